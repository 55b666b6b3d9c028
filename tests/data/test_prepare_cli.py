from typer.testing import CliRunner

from privlens.cli import app

runner = CliRunner()


def test_cli_prepare_writes_and_resumes(face_tree, tmp_path):
    dst = tmp_path / "out"
    args = ["data", "prepare", str(face_tree), str(dst), "--size", "48", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "4 face(s)" in first.stdout and "3 skipped" in first.stdout
    assert "no_face.png: no face found (dlib)" in first.stderr
    assert len(list(dst.rglob("*.png"))) == 4 and (dst / "landmarks.csv").is_file()
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "0 processed now, 7 done before" in second.stdout


def test_cli_prepare_with_mtcnn_boxes(face_tree, tmp_path):
    dst = tmp_path / "out"
    args = ["data", "prepare", str(face_tree / "female"), str(dst), "--size", "32", "--detector", "mtcnn"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list(dst.rglob("*.png"))) == 2


def test_cli_prepare_user_errors(face_tree, tmp_path):
    cases = [
        (["data", "prepare", str(tmp_path / "missing"), str(tmp_path / "o")], "not a folder"),
        (["data", "prepare", str(face_tree), str(tmp_path / "o"), "--detector", "haar"], "--detector"),
        (["data", "prepare", str(face_tree), str(tmp_path / "o"), "--size", "4"], "--size"),
        (["data", "prepare", str(face_tree), str(tmp_path / "o"), "--max-faces", "0"], "--max-faces"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert "Traceback" not in result.output


def test_cli_prepare_nothing_found_exits_1(tmp_path):
    from privlens.data.images import save_image
    from privlens.data.samples import lfw_non_faces

    save_image(lfw_non_faces()[0], tmp_path / "src" / "a[1].png")  # brackets are not markup
    result = runner.invoke(
        app, ["data", "prepare", str(tmp_path / "src"), str(tmp_path / "o"), "--no-progress"]
    )
    assert result.exit_code == 1 and "0 face(s)" in result.stdout
    assert "a[1].png: no face found (dlib)" in result.stderr
