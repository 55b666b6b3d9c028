"""Large photos anonymised region by region (privlens.anonymize.regions): the same result as the
whole-frame pipeline, the photo's size, format and untouched pixels kept. The region threshold is
lowered so that 640 x 480 scenes take that path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from anonymize_scenes import make_scene
from PIL import Image

from privlens.anonymize import jobs, regions
from privlens.anonymize.frames import FramePipeline
from privlens.data import large

pytestmark = pytest.mark.skipif(not large.available(), reason="libvips (pyvips) is not installed")


def changed_outside(before: np.ndarray, after: np.ndarray, boxes) -> int:
    """Pixels (grey or colour) that differ outside the union of ``boxes`` (x0, y0, x1, y1)."""
    inside = np.zeros(before.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    differs = before != after
    return int(((differs.any(2) if differs.ndim == 3 else differs) & ~inside).sum())


class InvertPainter:
    """A smooth model-free painter: the crop's negative (no check: it is no face)."""

    size = 64

    def paint(self, crops, landmarks, slots):
        return 1.0 - crops


@pytest.mark.parametrize("band_rows", [None, 7])
def test_given_the_same_faces_regions_equal_the_whole_frame(tmp_path, monkeypatch, band_rows):
    scene, _ = make_scene()
    Image.fromarray(scene).save(tmp_path / "scene.png")
    pipeline = FramePipeline(InvertPainter(), check=False)
    faces = pipeline.find(scene)
    whole = scene.copy()
    expected = pipeline.process([whole], [faces], [[None] * len(faces)])[0]
    monkeypatch.setattr(regions, "BAND_ROWS", band_rows)
    records, patches = regions.process(pipeline, large.LargePhoto(tmp_path / "scene.png"), faces, [None] * 4)
    assert pipeline.band_rows is None  # restored for ordinary photos
    out = scene.copy()
    for patch in patches:
        out[patch.y : patch.y + patch.rgb.shape[0], patch.x : patch.x + patch.rgb.shape[1]] = patch.rgb
    assert [r.to_json() for r in records] == [r.to_json() for r in expected]
    assert np.array_equal(out, whole)  # bit for bit, in bands or not
    assert len(patches) < 4  # overlapping work regions were merged


def test_work_regions_cover_what_processing_reads_and_merge_when_they_overlap():
    assert regions.merge_regions([(0, 0, 10, 10), (20, 0, 30, 10), (5, 5, 25, 8)]) == [
        ((0, 0, 30, 10), [0, 1, 2])
    ]
    assert regions.merge_regions([(0, 0, 10, 10), (10, 0, 20, 10)]) == [
        ((0, 0, 10, 10), [0]),
        ((10, 0, 20, 10), [1]),
    ]
    scene, _ = make_scene()
    pipeline = FramePipeline(InvertPainter(), check=False)
    for face in pipeline.find(scene):
        x0, y0, x1, y1 = regions.work_region(face, 640, 480)
        bx0, by0, bx1, by1 = face.box
        assert x0 <= bx0 and y0 <= by0 and x1 >= min(640, bx1) and y1 >= min(480, by1)


@pytest.fixture
def photos(tmp_path):
    """A colour scene (PNG), the same scene grey, the scene as a sideways phone JPEG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    scene, _ = make_scene()
    Image.fromarray(scene).save(folder / "scene.png")
    Image.fromarray(scene[..., 0]).save(folder / "grey.png")
    sideways = Image.fromarray(scene).transpose(Image.Transpose.ROTATE_90)
    exif = sideways.getexif()
    exif[0x0112] = 6
    sideways.save(folder / "phone.jpg", exif=exif, quality=95)
    data = (folder / "scene.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])  # a damaged photo: skipped, not fatal
    return folder


def run(oracle, photos, out):
    report = jobs.AnonymizeJob(None, painter=oracle).run(photos, out, progress=False)
    manifest = json.loads(report.manifest.read_text())
    return report, {r["input"].rsplit("/", 1)[-1]: r for r in manifest["inputs"]}


def test_a_large_photo_job_keeps_size_format_and_untouched_pixels(oracle, photos, tmp_path, monkeypatch):
    _, ordinary = run(oracle, photos, tmp_path / "whole")
    monkeypatch.setattr(regions, "REGION_PIXELS", 100_000)

    def whole_frame(path, *args, **kwargs):
        raise AssertionError(f"{path} was read whole")

    monkeypatch.setattr(jobs, "read_photo", whole_frame)
    report, pieces = run(oracle, photos, tmp_path / "regions")
    assert report.replaced == 12 and report.pixelated == 0
    assert [path.name for path, _ in report.skipped] == ["cut.png"]
    assert not (tmp_path / "regions" / "cut.png").exists()
    scene = np.asarray(Image.open(photos / "scene.png"))
    for name, mode in (("scene.png", "RGB"), ("grey.png", "L"), ("phone.jpg", "RGB")):
        record = pieces[name]
        assert "in regions" in record["processed"] and record["size"] == [640, 480]
        with Image.open(tmp_path / "regions" / name) as output:
            assert output.mode == mode and output.size == (640, 480) and not output.getexif()
            assert output.format == ("JPEG" if name.endswith(".jpg") else "PNG")
            written = np.asarray(output).astype(int)
        expected = np.asarray(Image.open(tmp_path / "whole" / name)).astype(int)
        boxes = np.array([f["box"] for f in record["faces"]])
        assert np.abs(boxes - np.array([f["box"] for f in ordinary[name]["faces"]])).max() <= 1.0
        if name != "phone.jpg":  # lossless: nothing outside the face regions changed
            original = scene if mode == "RGB" else scene[..., 0]
            assert changed_outside(original, written, [f["region"] for f in record["faces"]]) == 0
        # the same faces painted: the warp painter amplifies coordinate rounding in a few pixels
        difference = np.abs(written - expected)
        # (measured: PNG mean 0.008, 0.01 % above 8; JPEG 0.16: libvips encodes without chroma
        # subsampling at quality 95, Pillow with)
        assert difference.mean() < 0.5 and (difference > 8).mean() < 0.002, (name, difference.max())


def test_use_regions_reads_only_the_header(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((400, 300, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((400, 300, 3), np.uint8)).save(tmp_path / "a.bmp")
    assert not regions.use_regions(tmp_path / "a.png")  # below the threshold
    monkeypatch.setattr(regions, "REGION_PIXELS", 1000)
    assert regions.use_regions(tmp_path / "a.png")
    assert not regions.use_regions(tmp_path / "a.bmp")  # libvips does not write BMP: whole frame
    assert "BMP" in regions.plan(tmp_path / "a.bmp")[1].upper()  # said, not silent
    monkeypatch.setattr(large, "_VIPS", None)
    monkeypatch.setattr(large, "_TRIED", True)
    monkeypatch.setattr(large, "_REASON", "ImportError: no pyvips")
    assert regions.plan(tmp_path / "a.png") == (
        False,
        f"{tmp_path / 'a.png'}: 300 x 400 px processed whole "
        "(libvips is unavailable (ImportError: no pyvips)): memory grows with it",
    )
    monkeypatch.setenv("PRIVLENS_MAX_PIXELS", "1000")
    with pytest.raises(ValueError, match="above the limit"):
        regions.use_regions(tmp_path / "a.png")
