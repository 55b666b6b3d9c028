import cv2
import numpy as np
import pytest
import torch

from privlens.data import FFHQ, CelebAHQ, DatasetLayoutError, FaceFolder, ImageFileError, VideoFrames
from privlens.data.images import save_image, square_resize
from privlens.data.samples import astronaut, lfw_faces
from privlens.data.transforms import StarGANAugment


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba_hq")
    faces = lfw_faces()
    for split, count in (("train", 3), ("val", 1)):
        for d, domain in enumerate(("female", "male")):
            for i in range(count):
                save_image(faces[10 * d + i], root / split / domain / f"{i:06d}.jpg")
    return root


def test_celebahq_domains_come_from_folder_names(celeba):
    train, val = CelebAHQ(celeba, "train", size=64), CelebAHQ(celeba, "val", size=64)
    assert train.domains == ["female", "male"] and len(train) == 6 and len(val) == 2
    assert train.train and not val.train
    item = val[1]
    assert item["image"].shape == (3, 64, 64) and item["label"] == 1 and "male" in item["path"]
    with pytest.raises(DatasetLayoutError, match="StarGAN v2 layout"):
        CelebAHQ(celeba / "train" / "female", "train")
    with pytest.raises(ValueError):
        CelebAHQ(celeba, "test")


def test_face_folder_converts_grey_and_rgba(face_tree):
    dataset = FaceFolder(face_tree, size=32, domains=True)
    assert dataset.domains == ["female", "male"]
    by_name = {p.name: i for i, (p, _) in enumerate(dataset.items)}
    for name in ("lfw001_grey.png", "lfw002_rgba.png", "astronaut.jpg"):
        image = dataset[by_name[name]]["image"]
        assert image.shape == (3, 32, 32) and image.min() >= 0 and image.max() <= 1
    with pytest.raises(ImageFileError, match="corrupt.jpg"):
        dataset[by_name["corrupt.jpg"]]
    with pytest.raises(ImageFileError, match="empty.png"):
        dataset[by_name["empty.png"]]
    assert len(FaceFolder(face_tree, size=32).domains) == 1


def test_face_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="not a folder"):
        FaceFolder(tmp_path / "missing")
    with pytest.raises(DatasetLayoutError, match="no images"):
        FaceFolder(tmp_path)
    save_image(astronaut(16), tmp_path / "loose.png")
    with pytest.raises(DatasetLayoutError, match="domain subfolder"):
        FaceFolder(tmp_path, domains=True)


def test_ffhq_with_and_without_attributes(tmp_path):
    faces = lfw_faces()
    for i in range(4):
        save_image(faces[i], tmp_path / "00000" / f"{i:05d}.png")
    assert FFHQ(tmp_path, size=16).domains == ["ffhq"]
    csv = tmp_path / "attributes.csv"
    csv.write_text("file,gender\n00000.png,female\n00001,male\n00002.png,male\n")
    dataset = FFHQ(tmp_path, size=16, attributes=csv)
    assert dataset.domains == ["female", "male"] and len(dataset) == 3  # 00003 has no row
    assert [label for _, label in dataset.items] == [0, 1, 1]
    (tmp_path / "bad.csv").write_text("name,age\n")
    with pytest.raises(DatasetLayoutError, match="columns"):
        FFHQ(tmp_path, attributes=tmp_path / "bad.csv")


def test_augmentation_is_crop_or_resize_then_maybe_flip():
    image = astronaut(128)
    resized = square_resize(image, 64)
    never_crop = StarGANAugment(64, p=0.0)
    seen = set()
    for seed in range(12):
        out = never_crop(image, torch.Generator().manual_seed(seed))
        assert out.shape == (3, 64, 64)
        flipped = torch.equal(out, resized.flip(-1))
        assert flipped or torch.equal(out, resized)
        seen.add(flipped)
    assert seen == {True, False}
    always_crop = StarGANAugment(64, p=1.0, flip=0.0)
    out = always_crop(image, torch.Generator().manual_seed(0))
    assert out.shape == (3, 64, 64) and not torch.equal(out, resized)
    a = StarGANAugment(64)(image, torch.Generator().manual_seed(3))
    b = StarGANAugment(64)(image, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_video_frames(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(7):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 2] = 40 * i  # BGR: red grows
        writer.write(frame)
    writer.release()
    video = VideoFrames(path, size=32, step=2)
    assert len(video) == 4 and video.indices == [0, 2, 4, 6]
    frames = video.frames()
    assert frames.shape == (4, 3, 32, 32)
    reds = frames[:, 0].mean((1, 2))
    assert torch.all(reds.diff() > 0.2) and frames[:, 2].max() < 0.1  # RGB order, frames in order
    assert torch.allclose(video[3]["image"], frames[3], atol=1e-6)
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    with pytest.raises(ImageFileError, match="not a readable video"):
        VideoFrames(tmp_path / "broken.avi")
    with pytest.raises(ImageFileError, match="not found"):
        VideoFrames(tmp_path / "missing.mp4")


def test_large_images_are_shrunk_before_they_become_float(tmp_path, monkeypatch):
    from PIL import Image

    from privlens.data import images

    big = (np.random.default_rng(0).random((1200, 1600, 3)) * 255).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    converted = []
    real = images.array_to_tensor
    monkeypatch.setattr(images, "array_to_tensor", lambda a: converted.append(a.shape) or real(a))
    small = images.load_image(tmp_path / "big.png", 32)
    direct = square_resize(real(big), 32)
    assert small.shape == (3, 32, 32) and (small - direct).abs().mean() < 0.01
    assert converted[-1][0] <= 2 * 32 * 2  # reduced (here by 18) before the float conversion
    assert images.open_image(tmp_path / "big.jpg", 32).size[0] <= 1600 // 8 * 2  # JPEG DCT scaling
    assert images.load_image(tmp_path / "big.png", max_side=400).shape == (3, 300, 400)


def test_pixel_limit_exif_and_tiny_images(tmp_path, monkeypatch):
    from PIL import Image

    from privlens.data.images import load_image

    Image.new("RGB", (300, 200)).save(tmp_path / "wide.png")
    monkeypatch.setenv("PRIVLENS_MAX_PIXELS", "50000")
    with pytest.raises(ImageFileError, match="megapixels, above the limit"):
        load_image(tmp_path / "wide.png")
    monkeypatch.delenv("PRIVLENS_MAX_PIXELS")
    picture = Image.new("RGB", (300, 200))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    picture.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").shape == (3, 300, 200)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "one.png")
    assert load_image(tmp_path / "one.png", 16).shape == (3, 16, 16)
