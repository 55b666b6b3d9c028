"""The privlens command end to end on tiny inputs (CPU, seconds)."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from privlens.cli import app
from privlens.data.images import load_image
from privlens.optics.hardware import MIRROR_TERMS
from privlens.optics.lensfile import read_lens

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(folder / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(folder / "sub" / "grey.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 4), dtype=np.uint8)).save(folder / "rgba.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_capture_folder_writes_only_captures_and_skips_bad_files(tmp_path, image_folder):
    out = tmp_path / "out"
    result = invoke("capture", image_folder, "--lens", "defocus", "--out", out, "--size", "32")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["rgb.png", "rgba.png", "sub/grey.png"]
    assert "broken.png" in result.output
    capture = load_image(out / "rgb.png")
    original = load_image(image_folder / "rgb.jpg", 32)
    assert capture.shape == (3, 32, 32)
    assert np.abs(capture.numpy() - original.numpy()).mean() > 0.02  # it is not the input


def test_capture_errors(tmp_path):
    missing = invoke("capture", tmp_path / "nothing", "--out", tmp_path / "o")
    assert missing.exit_code == 2 and "not found" in missing.output
    bad_lens = invoke("capture", tmp_path, "--lens", "fisheye", "--out", tmp_path / "o")
    assert bad_lens.exit_code == 2 and "unknown lens" in bad_lens.output
    (tmp_path / "x.png").write_bytes(b"junk")
    only_bad = invoke("capture", tmp_path / "x.png", "--out", tmp_path / "o", "--size", "16")
    assert only_bad.exit_code == 2 and "x.png" in only_bad.output  # the one input given: a user error
    folder = tmp_path / "bad_only"
    folder.mkdir()
    (folder / "y.png").write_bytes(b"junk")
    nothing = invoke("capture", folder, "--out", tmp_path / "o2", "--size", "16")
    assert nothing.exit_code == 1 and "y.png" in nothing.output  # skipped, listed, nothing written


def test_psf_figure(tmp_path):
    result = invoke("psf", "--lens", "prototype", "--out", tmp_path / "psf.png", "--size", "64", "--log")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "psf.png").size[0] > 300


def test_lens_create_info_export_import_round_trip(tmp_path):
    lens = tmp_path / "proto.safetensors"
    assert invoke("lens", "create", "prototype", "--out", lens).exit_code == 0
    info = invoke("lens", "info", lens)
    assert info.exit_code == 0 and "defocus" in info.output
    calibration = tmp_path / "cal.csv"
    calibration.write_text("term,max_um\n" + "\n".join(f"Z{t},1.0" for t in MIRROR_TERMS) + "\n")
    mirror = tmp_path / "dm.csv"
    exported = invoke("lens", "export", lens, "--calibration", calibration, "--out", mirror)
    assert exported.exit_code == 0, exported.output
    assert "Z5,-0.415000" in mirror.read_text()  # Noll 4 = -0.83 * 0.5 um on Thorlabs Z5
    back = tmp_path / "back.safetensors"
    imported = invoke(
        "lens", "import", mirror, "--format", "mirror", "--calibration", calibration, "--out", back
    )
    assert imported.exit_code == 0, imported.output
    original, _, _ = read_lens(lens)
    restored, _, provenance = read_lens(back)
    assert np.allclose(original.numpy(), restored.numpy(), atol=1e-6)
    assert provenance["format"] == "mirror"


def test_lens_create_with_an_aperture_stop(tmp_path):
    lens = tmp_path / "stop.safetensors"
    made = invoke("lens", "create", "open", "--aperture-radius-mm", "0.07", "--out", lens)
    assert made.exit_code == 0, made.output
    _, config, provenance = read_lens(lens)
    assert config.aperture_radius_m == pytest.approx(0.07e-3)
    assert provenance["aperture_radius_mm"] == pytest.approx(0.07)
    info = invoke("lens", "info", lens)
    # f/357: (357.14 / 12.5)^2 = 816 times the exposure of the paper's camera for the same light
    assert info.exit_code == 0 and "f/357" in info.output and "816 x the exposure" in info.output
    # by default the exposure time stays the paper camera's: 1/816 of its 4000 e- at full scale
    assert config.full_scale_e == pytest.approx(4000 / (0.05 / 0.14e-3 / 12.5) ** 2)
    assert provenance["exposure"] == "same" and "4.9 e- at full scale" in info.output
    longer = tmp_path / "longer.safetensors"
    stop = ("--aperture-radius-mm", "0.07", "--exposure", "lengthened")
    invoke("lens", "create", "open", *stop, "--out", longer)
    _, config, provenance = read_lens(longer)
    assert config.full_scale_e == 4000 and provenance["exposure"] == "lengthened"
    assert "collect 3.265e+06 e- in the same exposure" in invoke("lens", "info", longer).output
    refused = invoke(
        "lens", "create", "open", "--aperture-radius-mm", "-1", "--out", tmp_path / "x.safetensors"
    )
    assert refused.exit_code == 2 and "aperture_radius_m" in refused.output
    assert not (tmp_path / "x.safetensors").exists()
    alone = invoke("lens", "create", "open", "--exposure", "same", "--out", tmp_path / "y.safetensors")
    assert alone.exit_code == 2 and "--aperture-radius-mm" in alone.output
    assert not (tmp_path / "y.safetensors").exists()


def test_lens_export_refuses_out_of_range(tmp_path):
    lens = tmp_path / "proto.safetensors"
    invoke("lens", "create", "prototype", "--out", lens, "--prototype-scale-um", "3")
    calibration = tmp_path / "cal.csv"
    calibration.write_text("term,max_um\n" + "\n".join(f"Z{t},1.0" for t in MIRROR_TERMS) + "\n")
    refused = invoke("lens", "export", lens, "--calibration", calibration, "--out", tmp_path / "dm.csv")
    assert refused.exit_code == 2 and "beyond" in refused.output
    clipped = invoke(
        "lens", "export", lens, "--calibration", calibration, "--out", tmp_path / "dm.csv", "--clip"
    )
    assert clipped.exit_code == 0 and "clipped" in clipped.output


def test_lens_import_wavefront_and_bad_files(tmp_path):
    reading = tmp_path / "wfs.csv"
    reading.write_text("index,coefficient_um\n4,0.3\n")
    out = tmp_path / "measured.safetensors"
    assert invoke("lens", "import", reading, "--convention", "ansi", "--out", out).exit_code == 0
    coeffs, _, _ = read_lens(out)
    assert coeffs[3] == pytest.approx(0.3)
    not_lens = invoke("lens", "info", reading)
    assert not_lens.exit_code == 2 and "safetensors" in not_lens.output
    no_cal = invoke("lens", "import", reading, "--format", "mirror", "--out", tmp_path / "m.safetensors")
    assert no_cal.exit_code == 2 and "calibration" in no_cal.output
    again = invoke("lens", "import", reading, "--convention", "ansi", "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.output
    replaced = invoke("lens", "import", reading, "--convention", "noll", "--out", out, "--overwrite")
    assert replaced.exit_code == 0 and read_lens(out)[0][3] == pytest.approx(0.3)


def test_attack_command_on_a_folder(tmp_path):
    from privlens.attacks.job import embedded_faces
    from privlens.data.images import save_image

    folder = tmp_path / "faces"
    faces = embedded_faces(32)
    for i, face in enumerate(faces[:4]):
        save_image(face, folder / f"{i:02d}.png")
    (folder / "corrupt.png").write_bytes(b"nope")
    own = tmp_path / "attacker"
    for i, face in enumerate(faces[40:46]):
        save_image(face, own / f"{i:02d}.png")
    out = tmp_path / "attack"
    result = invoke(
        "attack",
        "--no-presets",
        "--lens",
        "defocus",
        "--data",
        folder,
        "--out",
        out,
        "--size",
        "32",
        "--evaluation-count",
        "4",
        "--inversion-steps",
        "5",
        "--rl-max-iterations",
        "3",
        "--no-identity",
        "--attacker-data",
        own,
    )
    assert result.exit_code == 0, result.output
    assert "corrupt.png" in result.output
    payload = json.loads((out / "attacks.json").read_text())
    attacks = {row["attack"] for row in payload["rows"]}
    assert attacks >= {"none", "wiener", "richardson-lucy", "inversion"}
    assert payload["protocol"]["evaluation_faces"] == 4 and payload["protocol"]["attacker_faces"] == 6
    assert (out / "attacks.md").is_file() and (out / "attacks.csv").is_file()
    assert (out / "attack_defocus.png").is_file()
    with open(out / "faces.csv", newline="") as handle:
        per_face = list(csv.DictReader(handle))
    evaluated = sorted(p.name for p in folder.glob("*.png") if p.name != "corrupt.png")
    assert [r["face"] for r in per_face if r["attack"] == "none"] == evaluated
    assert {r["attack"] for r in per_face} == attacks
    bad = invoke("attack", "--out", out, "--size", "30")
    assert bad.exit_code == 2 and "divisible by 8" in bad.output
    too_few = invoke("attack", "--data", folder, "--out", out, "--size", "32", "--evaluation-count", "4")
    assert too_few.exit_code == 2 and "attacker" in too_few.output


def test_attack_runs_only_the_named_attacks_with_the_given_seed(tmp_path):
    common = ["attack", "--no-presets", "--lens", "defocus", "--size", "32", "--evaluation-count", "4"]
    common += ["--inversion-steps", "0", "--no-identity", "--only", "wiener"]
    psnr = {}
    for seed in (0, 3):
        out = tmp_path / f"seed{seed}"
        result = invoke(*common, "--seed", str(seed), "--out", out)
        assert result.exit_code == 0, result.output
        payload = json.loads((out / "attacks.json").read_text())
        rows = payload["rows"]
        assert {row["attack"] for row in rows} == {"none", "wiener"}
        assert payload["protocol"]["seed"] == seed
        psnr[seed] = next(row["psnr"] for row in rows if row["attack"] == "none")
    assert psnr[0] != psnr[3]  # the seed draws the evaluated captures' sensor noise
    unknown = invoke(*common, "--only", "deblur", "--out", tmp_path / "x")
    assert unknown.exit_code == 2 and "deblur" in unknown.output and "tikhonov+inversion" in unknown.output
    assert not (tmp_path / "x").exists()


def test_version_completion_and_verbosity(tmp_path):
    from privlens import __version__

    version = invoke("--version")
    assert version.exit_code == 0 and version.output.strip() == f"privlens {__version__}"
    assert "--install-completion" in invoke("--help").output
    face = tmp_path / "face.png"
    Image.new("RGB", (40, 40), (120, 90, 60)).save(face)
    quiet = invoke("-q", "capture", face, "--lens", "open", "--out", tmp_path / "q", "--size", "16")
    assert quiet.exit_code == 0 and "privacy" in quiet.output  # warnings survive --quiet
    verbose = invoke("-v", "capture", face, "--out", tmp_path / "v", "--size", "16")
    assert verbose.exit_code == 0 and "face.png" in verbose.output
    both = invoke("-q", "-v", "capture", face, "--out", tmp_path / "b")
    assert both.exit_code == 2


def test_capture_refuses_to_overwrite_or_shadow_inputs(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 40), (200, 100, 50)).save(photos / name)
    before = (photos / "a.png").read_bytes()
    same = invoke("capture", photos, "--out", photos, "--size", "16")
    assert same.exit_code == 2 and "input folder itself" in same.output
    inside = invoke("capture", photos, "--out", photos / "captures", "--size", "16")
    assert inside.exit_code == 2 and "inside the input folder" in inside.output
    assert (photos / "a.png").read_bytes() == before and not (photos / "captures").exists()
    Image.new("RGB", (40, 40)).save(photos / "a.jpg")
    clash = invoke("capture", photos, "--out", tmp_path / "out", "--size", "16")
    assert clash.exit_code == 2 and "a.jpg" in clash.output and "a.png" in clash.output
    (photos / "a.jpg").unlink()
    assert invoke("capture", photos, "--out", tmp_path / "out", "--size", "16").exit_code == 0
    again = invoke("capture", photos, "--out", tmp_path / "out", "--size", "16")
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert invoke("capture", photos, "--out", tmp_path / "out", "--size", "16", "--overwrite").exit_code == 0


def test_attack_with_u_s_landmarks(tmp_path):
    import torch

    from privlens.models import save_heatmap_net
    from privlens.nets import HeatmapNet

    torch.manual_seed(0)
    u = save_heatmap_net(HeatmapNet(width=8, depth=1), tmp_path / "u.safetensors", image_size=32)
    common = ["attack", "--no-presets", "--lens", "defocus", "--size", "32", "--evaluation-count", "6"]
    common += ["--inversion-steps", "0", "--only", "wiener"]
    out = tmp_path / "out"
    result = invoke(*common, "--landmarks", u, "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "attacks.json").read_text())
    row = next(r for r in payload["rows"] if r["attack"] == "landmarks")
    assert {r["attack"] for r in payload["rows"]} == {"none", "wiener", "landmarks"}
    assert row["faces"] >= 2 and 0.0 <= row["rank1"] <= 1.0 and row["psnr"] is None
    assert "never trained on the evaluated faces" in payload["protocol"]["landmarks"]
    chosen = payload["attacker_choices"]["defocus"]["landmarks"]
    assert (
        str(chosen["value"]) in chosen["held_out_mean_rank"] and f"alpha={chosen['value']:g}" in row["choice"]
    )
    refused = {
        "--only landmarks needs --landmarks": [*common, "--only", "landmarks"],
        "drop --no-identity": [*common, "--landmarks", u, "--no-identity"],
        "trained at 32 px": [*common[:4], "--size", "64", "--landmarks", u],
        "no such file, run folder or shipped U": [*common, "--landmarks", tmp_path / "missing"],
    }
    for message, args in refused.items():
        bad = invoke(*args, "--out", tmp_path / "refused")
        assert bad.exit_code == 2 and message in bad.output, (message, bad.output)
        assert not (tmp_path / "refused").exists()


def test_attack_against_a_gallery_of_other_photos(tmp_path):
    """--gallery: identify each capture among other photos of the evaluated people (one subfolder
    per person); chance is one over the people, and bad layouts are refused before anything runs."""
    import torch
    import torch.nn.functional as F

    from privlens.attacks.job import embedded_faces
    from privlens.data.images import save_image

    everyone = embedded_faces(64)
    faces = everyone[:6]
    zoomed = F.interpolate(faces[:, :, 3:-3, 3:-3], size=(64, 64), mode="bicubic").clamp(0, 1)
    data, gallery = tmp_path / "data", tmp_path / "gallery"
    for k in range(6):
        save_image(faces[k], data / f"person{k}" / "capture.png")
        save_image(zoomed[k], gallery / f"person{k}" / "enrolment.png")
    save_image(torch.rand(3, 64, 64), gallery / "stranger" / "enrolment.png")  # a 7th person
    attacker = tmp_path / "attacker"
    for k in range(20, 32):
        save_image(everyone[k], attacker / f"{k}.png")
    common = ["attack", "--no-presets", "--lens", "open", "--data", data, "--evaluation-count", "6"]
    common += ["--inversion-steps", "0", "--only", "wiener", "--no-sensor-noise", "--attacker-data", attacker]
    out = tmp_path / "out"
    result = invoke(*common, "--gallery", gallery, "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "attacks.json").read_text())
    assert "other photos of 7 people" in payload["protocol"]["gallery"]
    capture = next(r for r in payload["rows"] if r["attack"] == "none")
    assert capture["faces"] >= 4 and capture["rank1"] >= 0.75  # the open lens: the same person
    assert capture["chance_rank1"] < 1 / capture["faces"] + 1e-9  # over people with a dlib face
    flat = tmp_path / "flat"
    save_image(faces[0], flat / "a.png")
    save_image(faces[1], flat / "b.png")
    stranger_only = tmp_path / "stranger_only"
    save_image(zoomed[0], stranger_only / "person0" / "enrolment.png")
    same_photo = tmp_path / "same_photo"
    for k in range(6):
        save_image(faces[k], same_photo / f"person{k}" / "enrolment.png")
    refused = {
        "one subfolder per person": [
            *common[:5],
            flat,
            "--evaluation-count",
            "1",
            *common[8:],
            "--gallery",
            gallery,
        ],
        "without a gallery photo": [*common, "--gallery", stranger_only],
        "other photos of the same people": [*common, "--gallery", same_photo],
        "needs --data": ["attack", "--no-presets", "--lens", "open", "--gallery", gallery],
    }
    for message, args in refused.items():
        bad = invoke(*args, "--out", tmp_path / "refused")
        assert bad.exit_code == 2 and message in bad.output, (message, bad.output)
