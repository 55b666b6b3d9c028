import csv
import io
import json

import pytest
import torch
from typer.testing import CliRunner

from privlens.cli import app
from privlens.data.images import save_image
from privlens.eval import EvalOptions, evaluate_pairs, render_report
from privlens.eval.pairs import match_pairs

UNAVAILABLE_OFFLINE = {"DIS FaceNet-VGGFace2", "DIS FaceNet-CASIA", "FID", "LPIPS"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """originals/ and deidentified/ with a mirrored astronaut, other people, a lost face,
    files without a partner and a corrupt de-identified file."""
    from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces

    root = tmp_path_factory.mktemp("pairs")
    faces, non_faces = lfw_faces(), lfw_non_faces()
    originals, deidentified = root / "originals", root / "method"
    face = astronaut(None)[:, 30:222, 125:317]
    save_image(face, originals / "astro.png")
    save_image(face.flip(-1), deidentified / "astro.jpg")  # matched by name without suffix
    for i in range(3):
        save_image(faces[i], originals / "people" / f"p{i}.png")
        save_image(faces[20 + i], deidentified / "people" / f"p{i}.png")
    save_image(faces[5], originals / "lost.png")
    save_image(non_faces[0], deidentified / "lost.png")
    save_image(faces[6], originals / "only_original.png")
    save_image(faces[7], deidentified / "only_deidentified.png")
    save_image(faces[8], originals / "broken.png")
    (deidentified / "broken.png").write_bytes(b"")
    return originals, deidentified


def test_match_pairs_by_relative_name(folders):
    pairs, unmatched = match_pairs(*folders)
    assert [p[0].stem for p in pairs] == ["astro", "broken", "lost", "p0", "p1", "p2"]
    assert unmatched == ["only_deidentified", "only_original"]


def test_pairs_report_offline(folders, offline):
    report = evaluate_pairs(*folders, EvalOptions(progress=False))
    assert report.pairs == 5 and len(report.unreadable) == 1 and "broken" in report.unreadable[0][0]
    assert report.detected["dlib"] == {"originals": 5, "deidentified": 4}
    assert report.detected["mtcnn"]["originals"] == 5 and report.detected["mtcnn"]["deidentified"] == 4
    metrics = {m.name: m for m in report.metrics}
    assert list(metrics)[:3] == ["DIS FR (dlib)", "DIS FaceNet-VGGFace2", "DIS FaceNet-CASIA"]
    assert metrics["DIS FR (dlib)"].count == 4
    dis = {r["name"]: r.get("DIS FR (dlib)") for r in report.per_pair}
    assert dis["astro"] < 0.6  # the mirrored astronaut is the same person
    assert all(dis[f"people/p{i}"] > 0.6 for i in range(3))  # other people
    faces = {r["name"]: r["faces"] for r in report.per_pair}
    assert dis["lost"] is None and faces["lost"] == {"dlib": [1, 0], "mtcnn": [1, 0]}
    assert metrics["DIS FR (dlib)"].value == pytest.approx(sum(v for v in dis.values() if v) / 4)
    assert metrics["Detection dlib"].value == pytest.approx(80.0) and metrics[
        "Detection MTCNN"
    ].value == pytest.approx(80.0)
    assert metrics["LM dlib"].count == 4 and metrics["Box MTCNN"].count == 4
    assert metrics["FD-dlib"].value is not None and metrics["FD-dlib"].value > 0
    assert "FID" in metrics and "FID" not in [m.name for m in report.metrics if m.value is not None]
    assert set(report.unavailable) == UNAVAILABLE_OFFLINE
    assert all(metrics[name].value is None for name in UNAVAILABLE_OFFLINE)
    assert "--inception-weights" in report.unavailable["FID"]

    table = render_report(report, "md")
    header = table.splitlines()[0]
    assert header.startswith(
        "| method | pairs | faces dlib (orig/de-id) | faces MTCNN (orig/de-id) | DIS FR (dlib) ↑"
    )
    assert "| method | 5 | 5/4 | 5/4 |" in table and "n/a" in table
    assert (
        "- unavailable: FID: no local weights, and the library's cache" in table and "only_original" in table
    )
    rows = list(csv.reader(io.StringIO(render_report(report, "csv"))))
    assert len(rows) == 2 and len(rows[0]) == len(rows[1]) and "FD-dlib ↓" in rows[0]
    data = json.loads(render_report(report, "json"))
    assert data["pairs"] == 5 and data["unavailable"].keys() == UNAVAILABLE_OFFLINE


def test_pair_geometry_of_a_shifted_copy_is_the_shift(tmp_path, shift_right):
    from privlens.data.samples import astronaut

    face = astronaut(None)[:, 30:222, 100:317]
    save_image(face, tmp_path / "a" / "x.png")
    save_image(shift_right(face, 20), tmp_path / "b" / "x.png")
    options = EvalOptions(identity=("dlib",), fid=False, lpips=False, progress=False)
    report = evaluate_pairs(tmp_path / "a", tmp_path / "b", options)
    assert report.value("LM dlib") == pytest.approx(20.0, abs=1.0)
    # NME: the Euclidean error of a 20 px shift over the outer-eye-corner distance, in percent
    assert report.value("NME dlib") == pytest.approx(100 * 20.0 / row_inter_ocular(face), rel=0.06)
    assert report.value("Detection dlib") == 100.0
    assert report.value("LM MTCNN") == pytest.approx(20.0, abs=2.0)
    assert report.value("DIS FR (dlib)") < 0.6  # same person
    assert report.value("FD-dlib") is None and "FD-dlib" in report.unavailable  # one face per side


runner = CliRunner()


def test_cli_eval_pairs_writes_the_table(folders, offline, tmp_path):
    out = tmp_path / "table.json"
    result = runner.invoke(app, ["eval", "pairs", *map(str, folders), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "DIS FR (dlib)" in result.stdout and "unavailable: LPIPS" in result.stdout
    assert json.loads(out.read_text())["detected"]["dlib"]["originals"] == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--out", "table.txt"], "--out must end in"),
        (["--identity", "arcface"], "unknown --identity"),
        (["--inception-weights", "/no/such/file.pth"], "weights file not found"),
        (["--lpips-net", "squeeze"], "--lpips-net"),
    ],
)
def test_cli_eval_pairs_user_errors(folders, arguments, message):
    result = runner.invoke(app, ["eval", "pairs", *map(str, folders), "--no-progress", *arguments])
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.output


def test_cli_eval_pairs_missing_folder(tmp_path):
    result = runner.invoke(app, ["eval", "pairs", str(tmp_path / "nope"), str(tmp_path), "--no-progress"])
    assert result.exit_code == 2 and "not found" in result.stderr


def row_inter_ocular(image) -> float:
    from privlens.eval.pairs import inter_ocular
    from privlens.faces import face_landmarks

    return inter_ocular(face_landmarks(image)[1])


def group(faces, blurred: bool = False):
    """Three LFW faces side by side on a 480 x 200 canvas ([3, H, W] in [0, 1])."""
    import torch.nn.functional as F

    canvas = torch.full((3, 200, 480), 0.45)
    for k, face in enumerate(faces):
        canvas[:, 25:175, 10 + 160 * k : 160 + 160 * k] = face
    if blurred:  # pixelated: blocks of 16 px
        canvas = F.interpolate(F.avg_pool2d(canvas[None], 16, ceil_mode=True), size=(200, 480))[0]
    return canvas


def test_faces_are_matched_by_place_and_untouched_faces_leak(tmp_path):
    """A group photo with one face replaced by another person, one blurred, one untouched: one
    leak, one original face without a partner, detection 2 of 3; an extra face is listed."""
    from privlens.data.samples import lfw_faces

    lfw = lfw_faces()
    original = group([lfw[1], lfw[2], lfw[3]])
    blurred = group([lfw[1], lfw[2], lfw[3]], blurred=True)
    output = original.clone()
    output[:, :, 0:160] = group([lfw[30], lfw[2], lfw[3]])[:, :, 0:160]  # another person
    output[:, :, 160:320] = blurred[:, :, 160:320]  # blurred beyond recognition
    save_image(original, tmp_path / "a" / "group.png")
    save_image(output, tmp_path / "b" / "group.png")
    empty = torch.full((3, 120, 160), 0.5)
    save_image(empty, tmp_path / "a" / "empty.png")
    save_image(empty, tmp_path / "b" / "empty.png")
    options = EvalOptions(identity=("dlib",), fid=False, lpips=False, progress=False)
    report = evaluate_pairs(tmp_path / "a", tmp_path / "b", options)
    metrics = {m.name: m for m in report.metrics}
    assert report.detected["dlib"] == {"originals": 3, "deidentified": 2}
    assert metrics["Leaks (dlib)"].value == 1 and metrics["Leaks (dlib)"].count == 3
    assert metrics["Detection dlib"].value == pytest.approx(200 / 3) and metrics["Detection dlib"].count == 3
    assert report.unmatched_faces["dlib"] == {"originals": 1, "deidentified": 0}
    row = next(r for r in report.per_pair if r["name"] == "group")
    per_face = sorted(row["DIS FR (dlib) per face"])
    assert per_face[0] < 0.1 and per_face[1] > 0.6  # the untouched face, the other person
    assert len(row["Leaks (dlib)"]) == 1 and 300 < row["Leaks (dlib)"][0][0] < 400  # the third face
    table = render_report(report, "md")
    assert "faces without a partner (dlib): 1 original, 0 de-identified, in group (1/0)" in table
    assert "1 face(s) still recognisable" in table and "| 1/3 |" in table


def test_large_pairs_are_analysed_reduced_with_errors_in_original_pixels(tmp_path, shift_right, monkeypatch):
    import torch.nn.functional as F

    from privlens.data.samples import astronaut
    from privlens.eval import pairs

    face = astronaut(None)[:, 30:222, 100:317]
    big = F.interpolate(face[None], scale_factor=3, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    save_image(big, tmp_path / "a" / "x.png")  # 651 x 576
    save_image(shift_right(big, 60), tmp_path / "b" / "x.png")
    monkeypatch.setattr(pairs, "ANALYSIS_MAX_SIDE", 300)  # read shrunk by 3, like a huge photo
    loaded = []
    real = pairs.load_image
    monkeypatch.setattr(
        pairs, "load_image", lambda *a, **k: loaded.append(real(*a, **k).shape) or real(*a, **k)
    )
    options = EvalOptions(identity=("dlib",), fid=False, lpips=False, progress=False)
    report = evaluate_pairs(tmp_path / "a", tmp_path / "b", options)
    assert loaded == [(3, 192, 217), (3, 192, 217)]  # never at full size
    assert report.reduced == ["x"] and "analysed on copies reduced to at most 300 px" in render_report(report)
    assert report.value("LM dlib") == pytest.approx(60.0, abs=4.0)  # the shift, in the original's pixels
    assert report.value("Detection dlib") == 100.0 and report.value("DIS FR (dlib)") < 0.6
