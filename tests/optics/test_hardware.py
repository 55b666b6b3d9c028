"""Deformable-mirror export/import: numbering, ranges, round trips, malformed files."""

import pytest
import torch

from privlens.optics.hardware import (
    MIRROR_TERMS,
    HardwareFileError,
    coefficients_to_mirror,
    noll_to_thorlabs,
    read_calibration,
    read_mirror_file,
    read_wavefront_file,
    thorlabs_to_noll,
    write_mirror_file,
)
from privlens.optics.presets import prototype_coefficients


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "cal.csv"
    rows = "\n".join(f"Z{t},{0.5 + 0.1 * t}" for t in MIRROR_TERMS)
    path.write_text(f"# measured\nterm,max_um\n{rows}\n")
    return path


def test_thorlabs_numbering_is_ansi_plus_one():
    assert thorlabs_to_noll(5) == 4  # defocus
    assert thorlabs_to_noll(4) == 5  # oblique astigmatism (2, -2)
    assert thorlabs_to_noll(6) == 6
    assert thorlabs_to_noll(13) == 11  # spherical
    assert sorted(thorlabs_to_noll(t) for t in MIRROR_TERMS) == list(range(4, 16))
    assert all(noll_to_thorlabs(thorlabs_to_noll(t)) == t for t in range(1, 60))


def test_export_converts_and_normalises(calibration_file):
    calibration = read_calibration(calibration_file)
    coeffs = torch.zeros(15)
    coeffs[3] = 0.5  # Noll 4 defocus -> Thorlabs Z5
    export = coefficients_to_mirror(coeffs, calibration)
    assert export.amplitudes[5] == pytest.approx(0.5 / calibration[5])
    assert all(export.amplitudes[t] == 0 for t in MIRROR_TERMS if t != 5)


def test_round_trip_through_a_mirror_file(tmp_path, calibration_file):
    calibration = read_calibration(calibration_file)
    coeffs = prototype_coefficients(15, 0.5)
    coeffs[1] = 0.3  # tip: dropped with a note
    export = coefficients_to_mirror(coeffs, calibration)
    assert any("piston/tip/tilt" in note for note in export.notes)
    path = write_mirror_file(export, tmp_path / "dm.csv", source="test")
    back = read_mirror_file(path, calibration)
    expected = coeffs.clone()
    expected[:3] = 0
    assert torch.allclose(back, expected, atol=1e-6)


def test_out_of_range_is_refused_or_clipped(calibration_file):
    calibration = read_calibration(calibration_file)
    coeffs = torch.zeros(15)
    coeffs[3] = 10.0
    with pytest.raises(ValueError, match="beyond"):
        coefficients_to_mirror(coeffs, calibration)
    with pytest.warns(UserWarning, match="Z5"):
        export = coefficients_to_mirror(coeffs, calibration, out_of_range="clip")
    assert export.amplitudes[5] == 1.0
    assert any("clipped" in note for note in export.notes)


def test_terms_beyond_the_mirror(calibration_file):
    calibration = read_calibration(calibration_file)
    coeffs = torch.zeros(21)
    coeffs[18] = 0.1
    with pytest.raises(ValueError, match="not shown by the mirror"):
        coefficients_to_mirror(coeffs, calibration)
    with pytest.warns(UserWarning):
        export = coefficients_to_mirror(coeffs, calibration, drop_unsupported=True)
    assert all(v == 0 for v in export.amplitudes.values())


def test_wavefront_import_conventions(tmp_path):
    ansi = tmp_path / "ansi.csv"
    ansi.write_text("index,coefficient_um\n4,0.25\n3,-0.1\n12,0.05\n")
    coeffs = read_wavefront_file(ansi, "ansi", 15)
    assert coeffs[3] == pytest.approx(0.25)  # ANSI 4 = Noll 4
    assert coeffs[4] == pytest.approx(-0.1)  # ANSI 3 = Noll 5
    assert coeffs[10] == pytest.approx(0.05)  # ANSI 12 = Noll 11
    thorlabs = tmp_path / "thorlabs.csv"
    thorlabs.write_text("index,coefficient_um\nZ5,0.25\n")
    assert read_wavefront_file(thorlabs, "thorlabs", 15)[3] == pytest.approx(0.25)
    noll = tmp_path / "noll.csv"
    noll.write_text("index,coefficient_um\n7,0.1\n")
    assert read_wavefront_file(noll).shape == (7,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("term,max_um\nZ4,1\n", "lacks terms"),
        ("foo,bar\n", "header"),
        ("term,max_um\n" + "\n".join(f"Z{t},-1" for t in MIRROR_TERMS), "positive"),
        ("term,max_um\nZ4,abc\n", "not a number"),
        ("term,max_um\nZ2,1\n", "not a mirror term"),
    ],
)
def test_malformed_calibration(tmp_path, text, message):
    path = tmp_path / "cal.csv"
    path.write_text(text)
    with pytest.raises(HardwareFileError, match=message):
        read_calibration(path)


def test_malformed_mirror_and_wavefront_files(tmp_path, calibration_file):
    calibration = read_calibration(calibration_file)
    bad = tmp_path / "dm.csv"
    bad.write_text("term,amplitude\nZ5,1.5\n")
    with pytest.raises(HardwareFileError, match="outside"):
        read_mirror_file(bad, calibration)
    dup = tmp_path / "wf.csv"
    dup.write_text("index,coefficient_um\n4,1\n4,2\n")
    with pytest.raises(HardwareFileError, match="twice"):
        read_wavefront_file(dup)
    with pytest.raises(HardwareFileError, match="not found"):
        read_calibration(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HardwareFileError):
        read_wavefront_file(binary)
