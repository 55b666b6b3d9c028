"""privlens.outputs: inputs are never overwritten or shadowed."""

from __future__ import annotations

import pytest

from privlens.optics.presets import make_camera
from privlens.outputs import (
    OutputError,
    check_output_dir,
    check_output_file,
    check_size,
    identifiable_warning,
    plan_outputs,
    require_allow_identifiable,
)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_output_dir_equal_to_or_inside_the_source_is_refused(tmp_path):
    source = tmp_path / "photos"
    _touch(source / "a.png")
    with pytest.raises(OutputError, match="input folder itself"):
        check_output_dir(source, [source])
    with pytest.raises(OutputError, match="inside the input folder"):
        check_output_dir(source / "captures", [source])
    with pytest.raises(OutputError, match="inside the input folder"):
        check_output_dir(tmp_path / "photos" / ".." / "photos" / "x", [source])
    assert check_output_dir(tmp_path / "out", [source]).is_dir()
    assert check_output_dir(source / "anonymized", [source], allow_inside=True).is_dir()
    with pytest.raises(OutputError, match="input folder itself"):
        check_output_dir(source, [source], allow_inside=True)


def test_output_dir_that_is_a_file_or_below_a_file_is_refused(tmp_path):
    blocker = _touch(tmp_path / "file")
    with pytest.raises(OutputError, match="existing file"):
        check_output_dir(blocker)
    with pytest.raises(OutputError, match="is a file"):
        check_output_dir(blocker / "sub")


def test_plan_refuses_collisions_inputs_and_existing_outputs(tmp_path):
    source = tmp_path / "photos"
    a_png, a_jpg, b = _touch(source / "a.png"), _touch(source / "a.jpg"), _touch(source / "d" / "b.jpg")
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="would both be written"):
        plan_outputs([a_png, a_jpg], source, out)
    plan = plan_outputs([a_png, b], source, out)
    assert plan == {a_png: out / "a.png", b: out / "d" / "b.png"}
    _touch(out / "d" / "b.png")
    with pytest.raises(OutputError, match="--overwrite"):
        plan_outputs([a_png, b], source, out)
    assert plan_outputs([a_png, b], source, out, overwrite=True) == plan
    with pytest.raises(OutputError, match="would overwrite the input"):  # even with overwrite
        plan_outputs([a_png], a_png, source, overwrite=True)


def test_output_file_checks(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, (".png",))
    with pytest.raises(OutputError, match="must end in .png"):
        check_output_file(tmp_path / "x.txt", (".png",))
    existing = _touch(tmp_path / "x.png")
    with pytest.raises(OutputError, match="already exists"):
        check_output_file(existing, (".png",))
    assert check_output_file(existing, (".png",), overwrite=True) == existing
    with pytest.raises(OutputError, match="also an input"):
        check_output_file(existing, overwrite=True, inputs=[existing])


def test_size_bounds():
    assert check_size(None) is None and check_size(256) == 256
    for bad in (0, -1, 100_000):
        with pytest.raises(OutputError, match="--size"):
            check_size(bad)


def test_identifiable_lenses_are_flagged():
    assert identifiable_warning("open") is not None
    assert identifiable_warning("prototype", make_camera("prototype", 32)) is None
    assert identifiable_warning("lowres", make_camera("lowres", 32)) is None
    flat = make_camera("defocus", 32, defocus_um=0.0)  # a flat lens under another name
    assert identifiable_warning("my-lens", flat) is not None
    with pytest.raises(OutputError, match="--allow-identifiable"):
        require_allow_identifiable("open", False)
    require_allow_identifiable("open", True)
    require_allow_identifiable("defocus", False, make_camera("defocus", 32))


def test_a_stopped_down_flat_lens_is_not_taken_for_the_open_one():
    """The cut-off 1 / (lambda N) across the field: 173 cycles at f/12.5, 6.05 for the 0.07 mm stop
    (hand-computed: 256 * 3.713 um / (440 nm * 50 mm / 0.14 mm)); the shipped stops pass the guard,
    a 0.15 mm stop (13 cycles, 18 of 19 re-identified in the stop screen) does not."""
    from privlens.models import shipped_path
    from privlens.optics.lensfile import load_lens
    from privlens.outputs import diffraction_cutoff_cycles

    assert diffraction_cutoff_cycles(make_camera("open", 32).config) == pytest.approx(172.8, abs=0.1)
    for name in ("lens-stop", "lens-stop-video"):
        stop = load_lens(shipped_path(name), 32)
        assert diffraction_cutoff_cycles(stop.config) == pytest.approx(6.05, abs=0.01)
        assert identifiable_warning(name, stop) is None
    wide = make_camera("open", 32, aperture_radius_m=0.15e-3)
    assert diffraction_cutoff_cycles(wide.config) == pytest.approx(12.96, abs=0.01)
    assert identifiable_warning("wide-stop", wide) is not None
