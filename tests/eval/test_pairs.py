import csv
import io
import json

import pytest
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
    assert dis["lost"] is None and faces["lost"] == {"dlib": [True, False], "mtcnn": [True, False]}
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
