import json

import numpy as np
import pytest

from privlens.data.images import ImageFileError, load_image
from privlens.data.prepare import prepare_faces, read_landmarks_csv, split_of
from privlens.faces import face_landmarks
from privlens.faces.landmarks import eye_centres


def test_prepare_aligns_faces_and_reports_the_rest(face_tree, tmp_path):
    dst = tmp_path / "prepared"
    report = prepare_faces(face_tree, dst, size=64, val_fraction=0.5, progress=False)
    skipped = dict(report.skipped)
    assert set(skipped) == {"male/no_face.png", "female/corrupt.jpg", "male/empty.png"}
    assert skipped["male/no_face.png"] == "no face found (dlib)"
    assert skipped["female/corrupt.jpg"].startswith("unreadable")
    assert report.processed == 7 and report.resumed == 0 and report.train + report.val == 4

    table = read_landmarks_csv(dst / "landmarks.csv")
    names = {name.split("/", 1)[1] for name in table}
    assert names == {
        "female/astronaut_0.png",
        "male/lfw000_0.png",
        "male/lfw001_grey_0.png",
        "female/lfw002_rgba_0.png",
    }
    for name, (split, source, points) in table.items():
        assert name == f"{split}/{source.rsplit('.', 1)[0]}_0.png" and split == split_of(source, 0.5)
        image = load_image(dst / name)
        assert image.shape == (3, 64, 64)
        right, left = eye_centres(points)
        assert abs(left[1] - right[1]) < 1.0  # eyes level
    # the stored landmarks are where dlib finds them on the written astronaut crop
    astro_name = next(n for n in table if "astronaut" in n)
    big = prepare_faces(face_tree / "female", tmp_path / "big", size=256, progress=False)
    big_table = read_landmarks_csv(tmp_path / "big" / "landmarks.csv")
    big_name = next(n for n in big_table if "astronaut" in n)
    _, again = face_landmarks(load_image(tmp_path / "big" / big_name))
    assert np.abs(again - big_table[big_name][2]).mean() < 2.0
    assert big.train + big.val == 2 and astro_name.endswith("astronaut_0.png")  # not the suit (HOG 0.12)
    assert (dst / "skipped.txt").read_text().count("\n") == 3


def test_prepare_resumes(face_tree, tmp_path):
    dst = tmp_path / "prepared"
    first = prepare_faces(face_tree, dst, size=32, progress=False)
    written = sorted(p for p in dst.rglob("*.png"))
    mtimes = {p: p.stat().st_mtime_ns for p in written}
    # simulate an interrupted run: drop one output and the last journal line
    written[0].unlink()
    journal = dst / ".prepare-journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # last line cut short
    second = prepare_faces(face_tree, dst, size=32, progress=False)
    assert second.processed == 2 and second.resumed == first.processed - 2
    assert sorted(dst.rglob("*.png")) == written
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in written[1:])
    assert second.skipped == first.skipped
    with pytest.raises(ValueError, match="other settings"):
        prepare_faces(face_tree, dst, size=64, progress=False)
    assert json.loads((dst / "prepare.json").read_text())["size"] == 32


def test_prepare_bad_sources(tmp_path):
    with pytest.raises(ImageFileError, match="not a folder"):
        prepare_faces(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFileError, match="no images"):
        prepare_faces(tmp_path / "empty", tmp_path / "out")


def test_split_is_stable_and_roughly_the_fraction():
    names = [f"img{i}.png" for i in range(2000)]
    fraction = sum(split_of(n, 0.1) == "val" for n in names) / len(names)
    assert 0.07 < fraction < 0.13
    assert [split_of(n, 0.1) for n in names] == [split_of(n, 0.1) for n in names]
    assert all(split_of(n, 0.0) == "train" for n in names[:50])


def test_output_inside_the_source_is_not_read_back(tmp_path):
    from privlens.data.images import save_image
    from privlens.data.samples import lfw_faces

    save_image(lfw_faces()[0], tmp_path / "a.png")
    first = prepare_faces(tmp_path, tmp_path / "prepared", size=32, progress=False)
    second = prepare_faces(tmp_path, tmp_path / "prepared", size=32, progress=False)
    assert first.processed == 1 and second.processed == 0 and second.resumed == 1
    assert second.train + second.val == 1


def group_photo() -> np.ndarray:
    """Four LFW faces on a 560 x 300 canvas, the last one cut by the right border (a third of it)."""
    import cv2

    from privlens.data.samples import lfw_faces

    faces = (lfw_faces().numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    canvas = np.full((300, 560, 3), 110, np.uint8)
    for k, (x, side) in enumerate(((10, 150), (170, 130), (320, 110))):
        canvas[40 : 40 + side, x : x + side] = cv2.resize(faces[k + 1], (side, side))
    canvas[60:260, 430:560] = cv2.resize(faces[5], (200, 200))[:, :130]
    return canvas


def test_every_face_of_a_group_photo_one_file_each(tmp_path):
    from PIL import Image

    from privlens.faces import detect_faces

    (tmp_path / "src").mkdir()
    Image.fromarray(group_photo()).save(tmp_path / "src" / "group.png")
    report = prepare_faces(tmp_path / "src", tmp_path / "out", size=64, detector="mtcnn", progress=False)
    table = read_landmarks_csv(tmp_path / "out" / "landmarks.csv")
    names = sorted(name.split("/", 1)[1] for name in table)
    assert names == ["group_0.png", "group_1.png", "group_2.png", "group_3.png"]
    assert report.train + report.val == 4 and {source for _, source, _ in table.values()} == {"group.png"}
    # left to right: the first crop is the widest face on the left
    boxes = [
        json.loads(line) for line in (tmp_path / "out" / ".prepare-journal.jsonl").read_text().splitlines()
    ]
    xs = [face["box"][0] for face in boxes[0]["faces"]]
    assert xs == sorted(xs)
    # the face cut by the border: beyond it the crop repeats the edge, so no second (mirrored) face
    last = next(name for name in table if name.endswith("group_3.png"))
    crop = (load_image(tmp_path / "out" / last).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert len(detect_faces(crop, "mtcnn")) == 1

    limited = prepare_faces(
        tmp_path / "src", tmp_path / "two", size=32, detector="mtcnn", max_faces=2, progress=False
    )
    assert limited.train + limited.val == 2 and limited.faces_left_out == 2
    widths = sorted(face["box"][2] - face["box"][0] for face in boxes[0]["faces"])
    threshold = (widths[1] + widths[2]) / 2
    small = prepare_faces(
        tmp_path / "src", tmp_path / "wide", size=32, detector="mtcnn", min_face=threshold, progress=False
    )
    assert small.train + small.val == 2  # the two faces wider than the threshold


def test_exif_rotated_photo_is_read_upright(tmp_path, astro):
    from PIL import Image

    array = (astro.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    sideways = Image.fromarray(array).transpose(Image.Transpose.ROTATE_90)
    exif = sideways.getexif()
    exif[0x0112] = 6
    (tmp_path / "src").mkdir()
    sideways.save(tmp_path / "src" / "phone.jpg", exif=exif, quality=95)
    report = prepare_faces(tmp_path / "src", tmp_path / "out", size=64, detector="mtcnn", progress=False)
    assert report.train + report.val == 1 and not report.skipped
    ((split, _, points),) = read_landmarks_csv(tmp_path / "out" / "landmarks.csv").values()
    right, left = eye_centres(points)
    assert abs(left[1] - right[1]) < 1.0 and right[0] < left[0]
