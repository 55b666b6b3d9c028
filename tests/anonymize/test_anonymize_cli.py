"""``privlens anonymize`` end to end: image, folder, video, both backends, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from privlens.cli import app
from privlens.data.images import load_image

SIZE = 64  # the conftest models' image size

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["anonymize", *[str(a) for a in args], "--no-progress"])


def text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def warp_args(models: Path, references: Path, out: Path, *extra):
    return ("--run", models, "--generator", "warp", "--reference", references, "--out", out, *extra)


def written(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """A folder: two faces (one grey, one RGBA), a nested face, a broken file, a note."""
    from privlens.data.samples import lfw_faces

    folder = tmp_path_factory.mktemp("scenes")
    (folder / "sub").mkdir()
    faces = (lfw_faces()[:3].numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    Image.fromarray(faces[0]).save(folder / "a.jpg")
    Image.fromarray(faces[1][..., 0]).save(folder / "grey.png")  # grey
    rgba = np.concatenate([faces[2], np.full(faces[2].shape[:2] + (1,), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(folder / "sub" / "rgba.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an input")
    return folder


@pytest.fixture(scope="module")
def stage2_run(models, tmp_path_factory) -> Path:
    """A Stage II run folder: the Stage I files plus a tiny random generator bundle (64 px)."""
    from privlens.nets import Generator, MappingNetwork, StyleEncoder
    from privlens.train import save_generator_bundle

    folder = tmp_path_factory.mktemp("stage2_run")
    for name in ("lens.safetensors", "heatmap_net.safetensors"):
        shutil.copy(models / name, folder / name)
    torch.manual_seed(3)
    save_generator_bundle(
        folder / "generator.safetensors",
        Generator(SIZE, base_width=8, max_width=32),
        StyleEncoder(SIZE, num_domains=2, base_width=8, max_width=32),
        MappingNetwork(16, 64, num_domains=2, hidden=32),
        ["female", "male"],
        {"test": True},
    )
    return folder


def test_image_writes_capture_heatmap_and_faces_never_the_input(models, references, scenes, tmp_path):
    from privlens.optics.lensfile import load_lens

    out = tmp_path / "out"
    result = invoke(scenes / "a.jpg", *warp_args(models, references, out, "--num-refs", "2"))
    assert result.exit_code == 0, result.output
    assert written(out) == [
        "anonymize.json",
        "anonymized/a_0.png",
        "anonymized/a_1.png",
        "captures/a.png",
        "heatmaps/a.png",
    ]
    scene = load_image(scenes / "a.jpg", SIZE)
    camera = load_lens(models / "lens.safetensors", SIZE).eval()
    with torch.no_grad():
        expected = camera(scene[None]).image[0]
    capture = load_image(out / "captures/a.png")
    assert (capture - expected).abs().max() <= 1 / 255 + 1e-6  # the camera's capture, 8-bit
    for name in written(out):
        if name.endswith(".png"):
            assert (load_image(out / name) - scene).abs().mean() > 0.03, f"{name} is the raw input"
    manifest = json.loads((out / "anonymize.json").read_text())
    faces = manifest["inputs"][0]["faces"]
    assert len({f["reference"] for f in faces}) == 2  # two distinct references
    assert manifest["settings"]["backend"] == "warp"
    assert manifest["settings"]["references_skipped"][0][0].endswith("zz_no_face.png")
    assert "zz_no_face.png" in text(result) and "no face" in text(result)


def test_folder_keeps_structure_converts_grey_rgba_and_skips_broken(models, references, scenes, tmp_path):
    out = tmp_path / "out"
    result = invoke(scenes, *warp_args(models, references, out, "--seed", "5"))
    assert result.exit_code == 0, result.output
    assert written(out) == [
        "anonymize.json",
        "anonymized/a_0.png",
        "anonymized/grey_0.png",
        "anonymized/sub/rgba_0.png",
        "captures/a.png",
        "captures/grey.png",
        "captures/sub/rgba.png",
        "heatmaps/a.png",
        "heatmaps/grey.png",
        "heatmaps/sub/rgba.png",
    ]
    assert "broken.png" in text(result) and "skipped" in text(result)
    manifest = json.loads((out / "anonymize.json").read_text())
    assert [Path(r).name for r, _ in manifest["skipped_inputs"]] == ["broken.png"]
    # same seed, same choices; the output folder inside the input folder is not read back
    again = invoke(scenes, *warp_args(models, references, scenes / "out", "--seed", "5"))
    assert again.exit_code == 0, again.output
    second = json.loads((scenes / "out" / "anonymize.json").read_text())
    assert [f["faces"] for f in second["inputs"]] == [f["faces"] for f in manifest["inputs"]]
    rerun = invoke(scenes, *warp_args(models, references, scenes / "out", "--seed", "5"))
    assert rerun.exit_code == 0 and "anonymised 3 input(s)" in text(rerun)
    shutil.rmtree(scenes / "out")


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_keeps_frame_count_and_rate_with_one_identity(
    models, references, tmp_path, suffix, video_writer
):
    clip = video_writer(tmp_path / f"clip{suffix}", frames=7, fps=12.0)
    out = tmp_path / "out"
    result = invoke(clip, *warp_args(models, references, out, "--num-refs", "2", "--batch-size", "3"))
    assert result.exit_code == 0, result.output
    videos = ["anonymized/clip_0.mp4", "anonymized/clip_1.mp4", "captures/clip.mp4", "heatmaps/clip.mp4"]
    assert written(out) == ["anonymize.json", *videos]
    for name in videos:
        capture = cv2.VideoCapture(str(out / name))
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        assert len(frames) == 7, name
        assert frames[0].shape == (SIZE, SIZE, 3)
    record = json.loads((out / "anonymize.json").read_text())["inputs"][0]
    assert record["frames"] == 7 and record["fps"] == pytest.approx(12.0)
    assert len(record["faces"]) == 2  # one reference per output clip, for every frame


def test_stage1_run_needs_warp_and_bad_model_files_are_refused(models, references, scenes, tmp_path):
    out = tmp_path / "out"
    image = scenes / "a.jpg"
    no_generator = invoke(image, "--run", models, "--reference", references, "--out", out)
    assert no_generator.exit_code == 2 and "--generator warp" in text(no_generator)
    lens, net = models / "lens.safetensors", models / "heatmap_net.safetensors"
    common = ("--generator", "warp", "--reference", references, "--out", out)
    swapped = invoke(image, "--lens", net, "--heatmap", lens, *common)
    assert swapped.exit_code == 2 and "not a privlens lens" in text(swapped)
    wrong_u = invoke(image, "--lens", lens, "--heatmap", lens, *common)
    assert wrong_u.exit_code == 2 and "not a privlens heatmap-network file" in text(wrong_u)
    as_generator = invoke(image, "--run", models, "--generator", net, "--reference", references, "--out", out)
    assert as_generator.exit_code == 2 and "heatmap-network file" in text(as_generator)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    broken_u = invoke(image, "--lens", lens, "--heatmap", corrupt, *common)
    assert broken_u.exit_code == 2 and "not a readable safetensors" in text(broken_u)
    missing = invoke(image, "--lens", lens, "--generator", "warp", "--reference", references, "--out", out)
    assert missing.exit_code == 2 and "--heatmap" in text(missing)
    assert not out.exists()  # nothing written by any refused job


def test_user_errors_exit_2_and_write_nothing(models, references, scenes, tmp_path):
    out = tmp_path / "out"
    image = scenes / "a.jpg"
    cases = {
        "input not found": (tmp_path / "nope.png", *warp_args(models, references, out)),
        "neither an image": (scenes / "notes.txt", *warp_args(models, references, out)),
        "multiple of 8": (image, *warp_args(models, references, out, "--size", "60")),
        "needs a GAN": (image, *warp_args(models, references, out, "--latent")),
        "only 5 usable": (image, *warp_args(models, references, out, "--num-refs", "6")),
        "no usable reference": (image, *warp_args(models, references / "zz_no_face.png", out)),
        "--reference": (image, "--run", models, "--generator", "warp", "--out", out),
        "not found": (image, *warp_args(models, tmp_path / "no_refs", out)),
    }
    for expected, args in cases.items():
        result = invoke(*args)
        assert result.exit_code == 2, (expected, result.output)
        assert expected in text(result), (expected, result.output)
    assert not out.exists()
    only_broken = invoke(scenes / "broken.png", *warp_args(models, references, out))
    assert only_broken.exit_code == 1 and "not a readable image" in text(only_broken)
    assert not (out / "anonymize.json").exists()


def test_a_failed_run_loses_no_earlier_output(models, references, scenes, tmp_path):
    out = tmp_path / "out"
    assert invoke(scenes / "a.jpg", *warp_args(models, references, out)).exit_code == 0
    before = {name: (out / name).read_bytes() for name in written(out)}
    failed = invoke(scenes / "a.jpg", *warp_args(models, references / "zz_no_face.png", out))
    assert failed.exit_code == 2
    assert {name: (out / name).read_bytes() for name in written(out)} == before


def test_gan_run_matches_generator_of_capture_heatmap_and_reference_style(
    stage2_run, references, scenes, tmp_path
):
    from privlens.anonymize.references import load_references
    from privlens.optics.lensfile import load_lens
    from privlens.train import load_generator_bundle
    from privlens.train.checkpoint import load_heatmap_net

    out = tmp_path / "out"
    result = invoke(
        scenes / "a.jpg", "--run", stage2_run, "--reference", references, "--out", out, "--domain", "male"
    )
    assert result.exit_code == 0, result.output
    record = json.loads((out / "anonymize.json").read_text())["inputs"][0]
    face = record["faces"][0]
    assert face["domain"] == "male"
    bundle = load_generator_bundle(stage2_run / "generator.safetensors")
    net = load_heatmap_net(stage2_run / "heatmap_net.safetensors").eval()
    camera = load_lens(stage2_run / "lens.safetensors", SIZE).eval()
    reference = next(
        r for r in load_references(references, SIZE).references if str(r.path) == face["reference"]
    )
    with torch.no_grad():
        capture = camera(load_image(scenes / "a.jpg", SIZE)[None]).image
        style = bundle.style_encoder(reference.image[None], torch.tensor([1]))
        expected = bundle.generator(capture, net(capture), style)[0]
    produced = load_image(out / "anonymized/a_0.png")
    assert (produced - expected).abs().max() <= 1 / 255 + 1e-5
    # another domain gives another face
    female = invoke(
        scenes / "a.jpg",
        "--run",
        stage2_run,
        "--reference",
        references,
        "--out",
        tmp_path / "f",
        "--domain",
        "female",
    )
    assert female.exit_code == 0
    assert (load_image(tmp_path / "f/anonymized/a_0.png") - produced).abs().max() > 0


def test_gan_latent_mode_and_gan_errors(stage2_run, references, scenes, tmp_path):
    from privlens.train import load_generator_bundle

    out = tmp_path / "out"
    result = invoke(
        scenes / "a.jpg", "--run", stage2_run, "--latent", "--num-refs", "3", "--seed", "2", "--out", out
    )
    assert result.exit_code == 0, result.output
    faces = json.loads((out / "anonymize.json").read_text())["inputs"][0]["faces"]
    assert len(faces) == 3 and all(len(f["latent"]) == 16 and f["reference"] is None for f in faces)
    images = [load_image(out / f"anonymized/a_{k}.png") for k in range(3)]
    assert (images[0] - images[1]).abs().max() > 0  # different latents, different faces
    bundle = load_generator_bundle(stage2_run)
    assert faces[0]["domain"] in bundle.domains
    wrong_size = invoke(scenes / "a.jpg", "--run", stage2_run, "--latent", "--size", "32", "--out", out)
    assert wrong_size.exit_code == 2 and "trained at 64 px" in text(wrong_size)
    ignored = invoke(
        scenes / "a.jpg", "--run", stage2_run, "--latent", "--reference", references, "--out", out
    )
    assert ignored.exit_code == 0 and "not used with --latent" in text(ignored)
    wrong_domain = invoke(scenes / "a.jpg", "--run", stage2_run, "--latent", "--domain", "cat", "--out", out)
    assert wrong_domain.exit_code == 2 and "unknown domain" in text(wrong_domain)
    # a Stage II run with --generator warp uses the warp backend on the same lens and U
    warp = invoke(scenes / "a.jpg", *warp_args(stage2_run, references, tmp_path / "w"))
    assert warp.exit_code == 0 and "warp backend" in text(warp)
