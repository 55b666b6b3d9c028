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
        "female/astronaut.png",
        "male/lfw000.png",
        "male/lfw001_grey.png",
        "female/lfw002_rgba.png",
    }
    for name, (split, source, points) in table.items():
        assert name == f"{split}/{source.rsplit('.', 1)[0]}.png" and split == split_of(source, 0.5)
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
    assert big.train + big.val == 2 and astro_name.endswith("astronaut.png")
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
