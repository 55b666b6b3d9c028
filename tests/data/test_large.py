"""Large images through libvips: shrunk while decoded (never whole in memory), read in regions and
written back streamed with some regions replaced. Sizes stay small: the streaming thresholds are
lowered instead of writing 12000 px files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from privlens.data import images, large
from privlens.data.images import ImageFileError, load_image, open_image
from privlens.data.photos import read_photo

pytestmark = pytest.mark.skipif(not large.available(), reason="libvips (pyvips) is not installed")


def smooth_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image (gradients and a few blobs): compresses well, like a photo."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [
        128 + 100 * np.sin(xs / rng.uniform(40, 90) + c) * np.cos(ys / rng.uniform(40, 90) - c)
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


@pytest.fixture
def streamed(monkeypatch):
    """Stream every image above 1 MP (instead of 16 MP) and fail if Pillow decodes one whole."""
    monkeypatch.setattr(images, "STREAM_MIN_PIXELS", 1_000_000)
    decoded = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:  # a real decode (later calls on a loaded image return at once)
            decoded.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return decoded


def pillow_path(path, monkeypatch, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(images, "STREAM_MIN_PIXELS", 10**12)
        return open_image(path, **kwargs)


def test_a_large_png_is_shrunk_while_decoded_to_the_requested_size(tmp_path, streamed, monkeypatch):
    array = smooth_rgb(3000, 3000)
    Image.fromarray(array).save(tmp_path / "big.png", compress_level=1)
    tensor = load_image(tmp_path / "big.png", 256)
    assert tensor.shape == (3, 256, 256)
    assert not [size for size in streamed if size == (3000, 3000)]  # never decoded whole by Pillow
    shrunk = open_image(tmp_path / "big.png", 256)
    reference = pillow_path(tmp_path / "big.png", monkeypatch, size=256)
    assert shrunk.size == reference.size == (600, 600) and shrunk.mode == "RGB"  # factor 5, as Pillow
    difference = np.abs(np.asarray(shrunk).astype(int) - np.asarray(reference))
    assert difference[:-1, :-1].max() <= 1  # box averages, rounding apart (edge cells: see notes)
    assert load_image(tmp_path / "big.png", max_side=1000).shape == (3, 1000, 1000)


@pytest.mark.parametrize("kind", ["grey16", "rgba", "palette", "rotated"])
def test_modes_and_orientation_match_the_pillow_path(tmp_path, streamed, monkeypatch, kind):
    array = smooth_rgb(1200, 1500)
    path = tmp_path / f"{kind}.png"
    if kind == "grey16":
        Image.fromarray(array[..., 0].astype(np.uint16) * 257).save(path)
    elif kind == "rgba":
        alpha = np.linspace(0, 255, 1500, dtype=np.float32)[None].repeat(1200, 0).astype(np.uint8)
        Image.fromarray(np.dstack([array, alpha])).save(path)
    elif kind == "palette":
        Image.fromarray(array).quantize(64).save(path)
    else:
        picture = Image.fromarray(array)
        exif = picture.getexif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        picture.save(path, exif=exif)
    shrunk = open_image(path, 100)
    assert not streamed  # never decoded whole by Pillow
    reference = pillow_path(path, monkeypatch, size=100)
    assert shrunk.mode == reference.mode and shrunk.size == reference.size
    if kind == "rotated":
        assert shrunk.size == (1200 // 6, 1500 // 6)  # upright: portrait
    scale = 257 if kind == "grey16" else 1
    difference = np.abs(np.asarray(shrunk).astype(int) - np.asarray(reference)) / scale
    if kind == "rgba":  # colour matters as much as it is opaque (what load_image composites)
        difference = difference * np.asarray(reference)[..., 3:] / 255.0
    assert difference[1:-1, 1:-1].max() <= 3  # alpha-weighted averages round a little more


def test_damaged_large_png_is_one_error_and_pillow_is_the_fallback(tmp_path, streamed, monkeypatch):
    Image.fromarray(smooth_rgb(1200, 1200)).save(tmp_path / "big.png")
    data = (tmp_path / "big.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match="cut.png is not a readable image"):
        load_image(tmp_path / "cut.png", 64)
    monkeypatch.setattr(large, "_VIPS", None)  # libvips unavailable: Pillow decodes, same size
    monkeypatch.setattr(large, "_TRIED", True)
    monkeypatch.setattr(large, "_REASON", "ImportError: no pyvips")
    monkeypatch.setattr(images, "_FALLBACK_NOTED", False)
    with pytest.warns(RuntimeWarning, match="decoded whole by Pillow.*no pyvips"):
        assert load_image(tmp_path / "big.png", 64).shape == (3, 64, 64)
    assert (1200, 1200) in streamed


def test_large_photo_regions_and_streamed_write_keep_everything_else(tmp_path):
    array = smooth_rgb(900, 1200)
    Image.fromarray(array).save(tmp_path / "photo.png")
    photo = large.LargePhoto(tmp_path / "photo.png")
    assert (photo.width, photo.height, photo.grey, photo.alpha) == (1200, 900, False, False)
    assert np.array_equal(photo.region((100, 50, 400, 300)), array[50:300, 100:400])
    small, sx, sy = photo.reduced(300)
    assert small.shape == (225, 300, 3) and sx == pytest.approx(4.0) and sy == pytest.approx(4.0)
    assert np.abs(small.astype(int) - array[::4, ::4]).mean() < 6
    patch = np.full((100, 150, 3), 7, np.uint8)
    photo.write(tmp_path / "out.png", [large.Patch(500, 600, patch)])
    written = np.asarray(Image.open(tmp_path / "out.png"))
    expected = array.copy()
    expected[600:700, 500:650] = 7
    assert written.shape == array.shape and np.array_equal(written, expected)  # lossless, bit for bit
    photo.write(tmp_path / "out.jpg", [large.Patch(0, 0, patch)])
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (1200, 900) and not jpeg.getexif()


def test_grey_and_alpha_photos_are_written_as_they_were_stored(tmp_path):
    grey = smooth_rgb(300, 400)[..., 1]
    alpha = np.full((300, 400), 200, np.uint8)
    Image.fromarray(np.dstack([grey, alpha])).save(tmp_path / "la.png")
    photo = large.LargePhoto(tmp_path / "la.png")
    assert photo.grey and photo.alpha
    assert np.array_equal(photo.region((0, 0, 400, 300)), np.repeat(grey[..., None], 3, 2))
    patch = np.zeros((10, 20, 3), np.uint8)
    patch[..., 0] = 255  # red: written grey with Pillow's luma weights, as write_photo does
    photo.write(tmp_path / "out.png", [large.Patch(5, 5, patch)])
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "LA"
        values = np.asarray(out)
    assert np.array_equal(values[..., 1], alpha)
    assert (values[5:15, 5:25, 0] == np.asarray(Image.fromarray(patch).convert("L"))).all()
    untouched = np.ones((300, 400), bool)
    untouched[5:15, 5:25] = False
    assert np.array_equal(values[..., 0][untouched], grey[untouched])


def test_read_photo_decodes_once(tmp_path, monkeypatch):
    """Orientation and format come from the one decode (a second full decode doubled the peak)."""
    Image.fromarray(smooth_rgb(200, 300)).save(tmp_path / "p.png")
    calls = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(bool(self.tile)) or real(self))
    photo = read_photo(tmp_path / "p.png")
    assert photo.rgb.shape == (200, 300, 3) and photo.format == "PNG" and sum(calls) == 1
