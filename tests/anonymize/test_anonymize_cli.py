"""``privlens anonymize`` end to end: image, folder, video, both backends, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from anonymize_scenes import BACKGROUND, identity_distance_at, lfw_uint8, make_scene, paste
from PIL import Image
from typer.testing import CliRunner

from privlens.cli import app

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


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder: a PNG scene with four faces, the same scene as a phone JPEG stored sideways with
    an EXIF rotation, a grey PNG scene below a sub-folder, a photo without a face, a broken file."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "sub").mkdir()
    scene, _ = make_scene()
    Image.fromarray(scene).save(folder / "scene.png")
    sideways = Image.fromarray(scene).transpose(Image.Transpose.ROTATE_90)  # stored 480 x 640
    exif = sideways.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the upright photo is the scene again
    sideways.save(folder / "phone.jpg", exif=exif, quality=95)
    Image.fromarray(scene[..., 0]).save(folder / "sub" / "grey.png")
    Image.fromarray(np.full((100, 120, 3), 200, np.uint8)).save(folder / "blank.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an input")
    return folder


def changed_outside(before: np.ndarray, after: np.ndarray, regions) -> int:
    inside = np.zeros(before.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in regions:
        inside[y0:y1, x0:x1] = True
    differs = before != after
    if differs.ndim == 3:
        differs = differs.any(2)
    return int((differs & ~inside).sum())


def test_folder_of_photos_keeps_size_format_and_every_untouched_pixel(models, references, photos, tmp_path):
    out = tmp_path / "out"
    result = invoke(photos, *warp_args(models, references, out))
    assert result.exit_code == 0, result.output
    assert written(out) == ["anonymize.json", "blank.png", "phone.jpg", "scene.png", "sub/grey.png"]
    assert "broken.png" in text(result) and "skipped" in text(result)
    assert "blank.png: no face found; copied unchanged" in text(result)
    assert (out / "blank.png").read_bytes() == (photos / "blank.png").read_bytes()
    manifest = json.loads((out / "anonymize.json").read_text())
    records = {Path(r["input"]).name: r for r in manifest["inputs"]}
    assert manifest["settings"]["backend"] == "warp" and manifest["settings"]["size"] == SIZE
    assert manifest["settings"]["sensor_noise"]["bit_depth"] >= 8  # the captures went through the sensor
    scene = np.asarray(Image.open(photos / "scene.png"))
    for name, mode in (("scene.png", "RGB"), ("grey.png", "L")):
        folder = out if name == "scene.png" else out / "sub"
        output = Image.open(folder / name)
        assert output.format == "PNG" and output.mode == mode and output.size == (640, 480)
        record = records[name]
        assert record["size"] == [640, 480] and len(record["faces"]) == 4
        # the random U gives no face: every face is pixelated, listed with the reason
        assert {f["action"] for f in record["faces"]} == {"pixelated"}
        assert {f["reason"] for f in record["faces"]} == {"no face found in the generated crop"}
        original = scene if mode == "RGB" else scene[..., 0]
        assert changed_outside(original, np.asarray(output), [f["region"] for f in record["faces"]]) == 0
    output = np.asarray(Image.open(out / "scene.png"))
    for square in make_scene()[1][:3]:
        assert identity_distance_at(scene, output, square) > 0.6
    phone = Image.open(out / "phone.jpg")
    assert phone.format == "JPEG" and phone.size == (640, 480)  # upright
    assert records["phone.jpg"]["exif_rotated"] and len(records["phone.jpg"]["faces"]) == 4
    assert 0x0112 not in phone.getexif()  # no metadata copied
    assert records["blank.png"]["faces"] == [] and "copied unchanged" in records["blank.png"]["notice"]
    assert "0 face(s) replaced, 12 pixelated" in text(result)


def test_skip_no_face_leaves_faceless_photos_out(models, references, photos, tmp_path):
    out = tmp_path / "out"
    result = invoke(
        photos / "blank.png", *warp_args(models, references, out, "--skip-no-face", "--no-sensor-noise")
    )
    assert result.exit_code == 0, result.output
    assert written(out) == ["anonymize.json"] and "left out" in text(result)
    assert json.loads((out / "anonymize.json").read_text())["settings"]["sensor_noise"] is False


def test_job_with_a_painter_replaces_every_face(oracle, photos, tmp_path):
    from privlens.anonymize.jobs import AnonymizeJob

    job = AnonymizeJob(None, painter=oracle)
    report = job.run(photos / "scene.png", tmp_path / "out", progress=False)
    assert report.replaced == 4 and report.pixelated == 0
    scene = np.asarray(Image.open(photos / "scene.png"))
    output = np.asarray(Image.open(tmp_path / "out" / "scene.png"))
    faces = json.loads(report.manifest.read_text())["inputs"][0]["faces"]
    assert changed_outside(scene, output, [f["region"] for f in faces]) == 0
    assert all(identity_distance_at(scene, output, square) > 0.6 for square in make_scene()[1][:3])


def moving_clip(path: Path, frames: int = 12, fps: float = 10.0) -> Path:
    """Two faces drifting right and down by 3 px per frame on a 320 x 240 canvas (MJPG .avi)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(frames):
        canvas = np.empty((240, 320, 3), np.uint8)
        canvas[...] = BACKGROUND
        paste(canvas, lfw_uint8(1), 10 + 3 * i, 20 + i, 120)
        paste(canvas, lfw_uint8(2), 170 + i, 80 + 2 * i, 110)
        writer.write(np.ascontiguousarray(canvas[..., ::-1]))
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def test_video_keeps_size_rate_and_one_track_per_face(oracle, tmp_path):
    from privlens.anonymize.jobs import AnonymizeJob

    clip = moving_clip(tmp_path / "clip.avi")
    job = AnonymizeJob(None, painter=oracle, detect_every=4, batch_size=5)
    report = job.run(clip, tmp_path / "out", progress=False)
    frames, fps = read_video(tmp_path / "out" / "clip.avi")
    assert len(frames) == 12 and frames[0].shape == (240, 320, 3) and fps == pytest.approx(10.0)
    record = json.loads(report.manifest.read_text())["inputs"][0]
    assert record["frames"] == 12 and record["size"] == [320, 240] and record["audio"] == "dropped"
    tracks = record["tracks"]
    assert [t["track"] for t in tracks] == [0, 1]  # two people, two ids, for the whole clip
    assert all(t["frames"] == [0, 11] and t["replaced"] + t["pixelated"] == 12 for t in tracks)
    assert sum(t["replaced"] for t in tracks) >= 20
    assert any("audio" in notice for notice in report.notices)
    original, _ = read_video(clip)
    assert np.abs(frames[6].astype(int) - original[6].astype(int)).max() > 50  # faces changed


def test_cli_video_with_the_models(models, references, tmp_path):
    clip = moving_clip(tmp_path / "clip.avi", frames=5)
    out = tmp_path / "out"
    result = invoke(clip, *warp_args(models, references, out, "--detect-every", "2"))
    assert result.exit_code == 0, result.output
    frames, _ = read_video(out / "clip.avi")
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)
    assert "audio (if any) dropped" in text(result)


def test_video_in_another_container_is_written_as_mp4(oracle, tmp_path, video_writer):
    from privlens.anonymize.jobs import AnonymizeJob

    clip = video_writer(tmp_path / "clip.mp4", frames=3, fps=12.0)
    (tmp_path / "in").mkdir()
    clip.rename(tmp_path / "in" / "clip.m4v")
    report = AnonymizeJob(None, painter=oracle).run(tmp_path / "in", tmp_path / "out", progress=False)
    assert [p.name for p in report.outputs] == ["clip.mp4"]
    assert len(read_video(tmp_path / "out" / "clip.mp4")[0]) == 3


class FakeWebcam:
    """Three frames of a face, then the end, with OpenCV's capture interface (BGR)."""

    def __init__(self, device: int) -> None:
        canvas = np.empty((240, 320, 3), np.uint8)
        canvas[...] = BACKGROUND
        paste(canvas, lfw_uint8(1), 100, 50, 150)
        self.frames = [canvas[..., ::-1].copy() for _ in range(3)]
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        return (True, self.frames.pop()) if self.frames else (False, None)

    def release(self) -> None:
        self.released = True


def test_webcam_loop_writes_a_file_through_the_video_function(oracle, tmp_path):
    from privlens.anonymize.frames import FaceFinder, FramePipeline
    from privlens.anonymize.stream import FrameStream
    from privlens.anonymize.webcam import run_webcam

    stream = FrameStream(FramePipeline(oracle, FaceFinder()), lambda: None, detect_every=2)
    count = run_webcam(stream, 0, tmp_path / "cam.avi", show=False, open_capture=FakeWebcam)
    frames, _ = read_video(tmp_path / "cam.avi")
    assert count == 3 and len(frames) == 3 and frames[0].shape == (240, 320, 3)
    assert list(stream.summaries) == [0] and stream.summaries[0].replaced == 3


def test_webcam_without_a_window_needs_a_file(models, references, tmp_path):
    result = invoke("--webcam", "0", "--no-show", "--run", models, "--generator", "warp", "-r", references)
    assert result.exit_code == 2 and "--out file.mp4" in text(result)
    both = invoke(tmp_path, "--webcam", "0", *warp_args(models, references, tmp_path / "o.mp4"))
    assert both.exit_code == 2 and "either a SOURCE" in text(both)


def test_stage1_run_needs_warp_and_bad_model_files_are_refused(models, references, photos, tmp_path):
    out = tmp_path / "out"
    image = photos / "scene.png"
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


def test_user_errors_exit_2_and_write_nothing(models, references, photos, tmp_path):
    out = tmp_path / "out"
    image = photos / "scene.png"
    cases = {
        "input not found": (tmp_path / "nope.png", *warp_args(models, references, out)),
        "neither an image": (photos / "notes.txt", *warp_args(models, references, out)),
        "multiple of 8": (
            image,
            *("--lens", "defocus", "--heatmap", models / "heatmap_net.safetensors", "--generator", "warp"),
            *("--reference", references, "--out", out, "--size", "60"),
        ),
        "needs a GAN": (image, *warp_args(models, references, out, "--latent")),
        "--min-face must be at least 8": (image, *warp_args(models, references, out, "--min-face", "2")),
        "--detect-every must be at least 1": (
            image,
            *warp_args(models, references, out, "--detect-every", "0"),
        ),
        "--smoothing must lie in": (image, *warp_args(models, references, out, "--smoothing", "0")),
        "--detector must be one of": (image, *warp_args(models, references, out, "--detector", "haar")),
        "no usable reference": (image, *warp_args(models, references / "zz_no_face.png", out)),
        "--reference": (image, "--run", models, "--generator", "warp", "--out", out),
        "not found": (image, *warp_args(models, tmp_path / "no_refs", out)),
        "--out DIR": (image, "--run", models, "--generator", "warp", "--reference", references),
    }
    for expected, args in cases.items():
        result = invoke(*args)
        assert result.exit_code == 2, (expected, result.output)
        assert expected in text(result), (expected, result.output)
    assert not out.exists()
    only_broken = invoke(photos / "broken.png", *warp_args(models, references, out))
    # the one input given is unreadable: a user error, exit 2 (a folder with nothing usable: 1)
    assert only_broken.exit_code == 2 and "not a readable image" in text(only_broken)
    assert not (out / "anonymize.json").exists()


def test_models_of_different_sizes_are_refused_with_both_sizes(models, references, photos, tmp_path):
    from privlens.models import save_heatmap_net
    from privlens.nets import HeatmapNet

    u32 = save_heatmap_net(HeatmapNet(width=8, depth=1), tmp_path / "u32.safetensors", image_size=32)
    result = invoke(
        photos / "scene.png", "--lens", models / "lens.safetensors", "--heatmap", u32,
        "--generator", "warp", "--reference", references, "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "lens at 64 px" in text(result) and "heatmap at 32 px" in text(result)
    wrong = invoke(photos / "scene.png", *warp_args(models, references, tmp_path / "o", "--size", "32"))
    assert wrong.exit_code == 2 and "trained at 64 px; --size 32" in text(wrong)


def test_a_failed_run_loses_no_earlier_output(models, references, photos, tmp_path):
    out = tmp_path / "out"
    assert invoke(photos / "scene.png", *warp_args(models, references, out)).exit_code == 0
    before = {name: (out / name).read_bytes() for name in written(out)}
    failed = invoke(photos / "scene.png", *warp_args(models, references / "zz_no_face.png", out))
    assert failed.exit_code == 2
    assert {name: (out / name).read_bytes() for name in written(out)} == before


def test_gan_run_paints_every_face_with_a_recorded_style(stage2_run, references, photos, tmp_path):
    out = tmp_path / "out"
    args = ("--run", stage2_run, "--reference", references, "--out", out, "--domain", "male", "--no-check")
    result = invoke(photos / "scene.png", *args)
    assert result.exit_code == 0, result.output
    faces = json.loads((out / "anonymize.json").read_text())["inputs"][0]["faces"]
    assert len(faces) == 4 and {f["action"] for f in faces} == {"replaced"}
    assert {f["style"]["domain"] for f in faces} == {"male"} and all(f["style"]["reference"] for f in faces)
    scene = np.asarray(Image.open(photos / "scene.png"))
    output = np.asarray(Image.open(out / "scene.png"))
    assert changed_outside(scene, output, [f["region"] for f in faces]) == 0
    checked = invoke(photos / "scene.png", "--run", stage2_run, "--latent", "--out", tmp_path / "c")
    assert checked.exit_code == 0, checked.output
    faces = json.loads((tmp_path / "c" / "anonymize.json").read_text())["inputs"][0]["faces"]
    assert all(len(f["style"]["latent"]) == 16 for f in faces)
    # an untrained generator paints no face: the check pixelates every one
    assert {f["reason"] for f in faces} == {"no face found in the generated crop"}


def test_gan_errors(stage2_run, references, photos, tmp_path):
    out = tmp_path / "out"
    image = photos / "blank.png"
    wrong_size = invoke(image, "--run", stage2_run, "--latent", "--size", "32", "--out", out)
    assert wrong_size.exit_code == 2 and "trained at 64 px" in text(wrong_size)
    ignored = invoke(image, "--run", stage2_run, "--latent", "--reference", references, "--out", out)
    assert ignored.exit_code == 0 and "not used with --latent" in text(ignored)
    wrong_domain = invoke(image, "--run", stage2_run, "--latent", "--domain", "cat", "--out", out)
    assert wrong_domain.exit_code == 2 and "unknown domain" in text(wrong_domain)
    warp = invoke(image, *warp_args(stage2_run, references, tmp_path / "w"))
    assert warp.exit_code == 0 and "warp backend" in text(warp)


def test_audio_is_copied_when_ffmpeg_is_installed(oracle, tmp_path, video_writer, monkeypatch):
    """With an ``ffmpeg`` on PATH (here a stand-in that copies the video), the muxed file replaces
    the silent one and the manifest says the audio was kept."""
    from privlens.anonymize.jobs import AnonymizeJob

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    fake.write_text('#!/bin/sh\nfor last; do :; done\ncp "$5" "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    clip = video_writer(tmp_path / "clip.avi", frames=3, fps=12.0)
    report = AnonymizeJob(None, painter=oracle).run(clip, tmp_path / "out", progress=False)
    record = json.loads(report.manifest.read_text())["inputs"][0]
    assert record["audio"] == "kept" and not any("audio" in n for n in report.notices)
    assert len(read_video(tmp_path / "out" / "clip.avi")[0]) == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anonymize.json", "clip.avi"]


def test_outputs_never_replace_inputs_and_existing_ones_need_overwrite(oracle, photos, tmp_path):
    from privlens.anonymize.jobs import AnonymizeJob
    from privlens.anonymize.pipeline import AnonymizeError

    job = AnonymizeJob(None, painter=oracle)
    with pytest.raises(AnonymizeError, match="input folder"):
        job.run(photos, photos / "out", progress=False)
    with pytest.raises(AnonymizeError, match="would overwrite the input"):
        job.run(photos / "blank.png", photos, progress=False)
    out = tmp_path / "out"
    job.run(photos / "blank.png", out, progress=False)
    with pytest.raises(AnonymizeError, match="--overwrite"):
        job.run(photos / "blank.png", out, progress=False)
    assert job.run(photos / "blank.png", out, progress=False, overwrite=True).done


def test_a_warp_content_generator_is_refused_with_latent_before_anything_is_written(
    stage2_run, photos, tmp_path
):
    from privlens.nets import Generator, MappingNetwork, StyleEncoder
    from privlens.train import save_generator_bundle

    folder = tmp_path / "warp_run"
    folder.mkdir()
    for name in ("lens.safetensors", "heatmap_net.safetensors"):
        shutil.copy(stage2_run / name, folder / name)
    save_generator_bundle(
        folder / "generator.safetensors",
        Generator(SIZE, base_width=8, max_width=32, content="warp", residual=True),
        StyleEncoder(SIZE, num_domains=1, base_width=8, max_width=32),
        MappingNetwork(16, 64, num_domains=1, hidden=32),
        ["face"],
    )
    out = tmp_path / "out"
    result = invoke(photos / "blank.png", "--run", folder, "--latent", "--out", out)
    assert result.exit_code == 2 and "not --latent" in text(result)
    assert not out.exists()
