"""Every command, walked through bad input: one plain ``error:`` line and exit status 2, no traceback,
nothing left behind.

Cases: a read-only output folder, an output path that is an existing file, a missing input, a corrupt
input, a decompression bomb (a 16000 x 16000 PNG of 33 KB), a 1 x 1 image, non-finite numbers in a
configuration (refused at load, naming the key), and rich markup in a path.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlens.cli import app

# ---------------------------------------------------------------------------------------------
# inputs


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb(path: Path, side: int = 16000) -> Path:
    """A valid 1-bit PNG of ``side x side`` pixels: a few KB on disk, ``side**2`` pixels decoded."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs shared by every case."""
    from PIL import Image

    from privlens.data.images import save_image
    from privlens.data.samples import lfw_faces
    from privlens.models.heatmap import save_heatmap_net
    from privlens.nets import HeatmapNet
    from privlens.optics.lensfile import save_lens
    from privlens.optics.presets import make_camera

    root = tmp_path_factory.mktemp("bad_input")
    faces = root / "faces"
    for i, face in enumerate(lfw_faces()[:3]):
        save_image(face, faces / f"f{i}.png")
    others = root / "others"
    for i, face in enumerate(lfw_faces()[60:64]):
        save_image(face, others / f"o{i}.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    write_bomb(root / "bomb.png")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(root / "one.png")
    (root / "file").write_text("I am a file")
    lens = save_lens(make_camera("defocus", 32), root / "lens.safetensors", {"test": True})
    net = HeatmapNet(width=8, num_stacks=1, depth=2)
    heatmap = save_heatmap_net(net, root / "heatmap_net.safetensors", image_size=32)
    run = root / "run"
    run.mkdir()
    for name in ("lens.safetensors", "heatmap_net.safetensors"):
        (run / name).write_bytes((root / name).read_bytes())
    (root / "cal.csv").write_text("term,max_um\n" + "".join(f"Z{j},1.0\n" for j in range(4, 16)))
    (root / "wfs.csv").write_text("index,coefficient_um\n4,1e300\n")
    (root / "nan.yaml").write_text("loss:\n  alpha1: .nan\n")
    data = root / "prepared"
    for split in ("train", "val"):
        (data / split).mkdir(parents=True)
    (data / "landmarks.csv").write_text("file,split,source\n")
    return {
        "root": root,
        "faces": faces,
        "others": others,
        "face": faces / "f0.png",
        "corrupt": root / "corrupt.png",
        "bomb": root / "bomb.png",
        "one": root / "one.png",
        "file": root / "file",
        "lens": lens,
        "heatmap": heatmap,
        "run": run,
        "cal": root / "cal.csv",
        "wfs": root / "wfs.csv",
        "nan_yaml": root / "nan.yaml",
        "prepared": data,
    }


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder nobody (root included) can write in: mode 0555, plus ``chattr +i`` when root."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    immutable = False
    try:
        if os.access(path, os.W_OK) and _writable(path):
            result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
            immutable = result.returncode == 0
            if not immutable or _writable(path):
                pytest.skip("cannot make a read-only folder here (root without chattr)")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


def _writable(path: Path) -> bool:
    probe = path / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


# ---------------------------------------------------------------------------------------------
# the commands: each builds its arguments from (input, output)


def _capture(f, source, out):
    return ["capture", source, "--out", out, "--size", "32"]


def _psf(f, source, out):
    return ["psf", "--lens", source or "prototype", "--out", Path(out) / "psf.png", "--size", "32"]


def _lens_create(f, source, out):
    return ["lens", "create", "defocus", "--out", Path(out) / "l.safetensors"]


def _lens_import(f, source, out):
    return ["lens", "import", source, "--out", Path(out) / "l.safetensors"]


def _lens_export(f, source, out):
    return ["lens", "export", source, "--calibration", f["cal"], "--out", Path(out) / "m.csv"]


def _lens_info(f, source, out):
    return ["lens", "info", source]


def _prepare(f, source, out):
    return ["data", "prepare", source, out, "--size", "32", "--no-progress"]


def _pairs(f, source, out):
    return ["eval", "pairs", source, source, "--out", Path(out) / "t.json", "--identity", "dlib",
            "--no-fid", "--no-lpips", "--no-progress"]  # fmt: skip


def _attack(f, source, out):
    return ["attack", "--no-presets", "--lens", "defocus", "--data", source, "--out", out, "--size", "32",
            "--evaluation-count", "1", "--inversion-steps", "0", "--rl-max-iterations", "2",
            "--no-identity", "--attacker-data", f["others"]]  # fmt: skip


def _anonymize(f, source, out):
    return ["anonymize", source, "--lens", f["lens"], "--heatmap", f["heatmap"], "--generator", "warp",
            "--reference", f["face"], "--out", out, "--size", "32"]  # fmt: skip


def _evaluate(f, source, out):
    return ["evaluate", "--run", f["run"], "--data", source, "--out", out, "--size", "32",
            "--identity", "dlib", "--no-fid", "--references-per-source", "1"]  # fmt: skip


def _sweep(f, source, out):
    return ["sweep", "--data", source, "--out", out, "--defocus", "0.5", "--heatmap", f["heatmap"],
            "--size", "32"]  # fmt: skip


def _train(f, source, out):
    return ["train", "heatmap", "--data", source, "--out", out, "train.steps=1", "net.width=8", "net.depth=2",
            "data.image_size=32", "train.progress=false"]  # fmt: skip


def _train_gan(f, source, out):
    return ["train", "gan", "--data", source, "--out", out, "--stage1", f["run"], "train.steps=1"]


def _report(f, source, out):
    return ["report", out]


# (command, builder, the good input used when the case is about the output)
WRITERS = {
    "capture": (_capture, "faces"),
    "psf": (_psf, None),
    "lens create": (_lens_create, None),
    "lens import": (_lens_import, None),
    "lens export": (_lens_export, "lens"),
    "data prepare": (_prepare, "faces"),
    "eval pairs": (_pairs, "faces"),
    "attack": (_attack, "faces"),
    "anonymize": (_anonymize, "faces"),
    "evaluate": (_evaluate, "faces"),
    "sweep": (_sweep, "prepared"),
    "train heatmap": (_train, "prepared"),
    "train gan": (_train_gan, "prepared"),
}

# commands whose input is an image (or a folder of images)
IMAGE_READERS = ("capture", "data prepare", "eval pairs", "anonymize", "attack")


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def assert_one_error_line(result, *needles: str):
    output = result.output
    assert "Traceback" not in output, output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]


# ---------------------------------------------------------------------------------------------
# output cases


@pytest.mark.parametrize("command", list(WRITERS))
def test_output_folder_that_is_an_existing_file(command, files, tmp_path):
    build, good = WRITERS[command]
    blocker = tmp_path / "taken"
    blocker.write_text("precious")
    source = files[good] if good else None
    if command == "lens import":
        source = tmp_path / "ok.csv"
        source.write_text("index,coefficient_um\n4,0.1\n")
    result = run(*build(files, source, blocker))
    assert_one_error_line(result, "taken")
    assert blocker.read_text() == "precious"


@pytest.mark.parametrize("command", ["capture", "attack", "anonymize", "evaluate"])
def test_negative_seed_is_refused_and_nothing_is_written(command, files, tmp_path):
    build, good = WRITERS[command]
    out = tmp_path / "out"
    result = run(*build(files, files[good], out), "--seed", "-1")
    assert_one_error_line(result, "--seed", "-1")
    assert not out.exists()


@pytest.mark.parametrize("command", list(WRITERS))
def test_read_only_output_folder(command, files, tmp_path):
    build, good = WRITERS[command]
    source = files[good] if good else None
    if command == "lens import":
        source = tmp_path / "ok.csv"
        source.write_text("index,coefficient_um\n4,0.1\n")
    with read_only_folder(tmp_path / "locked") as locked:
        result = run(*build(files, source, locked / "out"))
    assert_one_error_line(result)


def test_report_on_read_only_and_file_run_folders(files, tmp_path):
    assert_one_error_line(run("report", files["file"]), "file")
    with read_only_folder(tmp_path / "locked") as locked:
        assert_one_error_line(run("report", locked))
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "summary.json").write_text("[1, 2]")
    assert_one_error_line(run("report", tmp_path / "list"), "summary.json")


# ---------------------------------------------------------------------------------------------
# input cases


@pytest.mark.parametrize("command", [*IMAGE_READERS, "lens import", "lens export", "lens info", "evaluate",
                                     "sweep", "train heatmap", "psf"])  # fmt: skip
def test_missing_input(command, files, tmp_path):
    build = {**WRITERS, "lens info": (_lens_info, None)}[command][0]
    result = run(*build(files, tmp_path / "nowhere", tmp_path / "out"))
    assert_one_error_line(result, "nowhere")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


@pytest.mark.parametrize("case", ["corrupt", "bomb"])
@pytest.mark.parametrize("command", ["capture", "data prepare", "anonymize"])
def test_unreadable_single_image(command, case, files, tmp_path):
    build = WRITERS[command][0]
    out = tmp_path / "out"
    result = run(*build(files, files[case], out))
    assert_one_error_line(result, files[case].name)
    assert not out.exists() or not [p for p in out.rglob("*") if p.suffix in (".png", ".csv")]


@pytest.mark.parametrize("case", ["corrupt", "bomb"])
def test_unreadable_image_in_a_folder_is_skipped(case, files, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes(files["face"].read_bytes())
    (folder / f"bad_{case}.png").write_bytes(files[case].read_bytes())
    result = run("capture", folder, "--out", tmp_path / "out", "--size", "32")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "good.png").is_file()
    assert f"bad_{case}.png" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["capture", "data prepare", "eval pairs", "anonymize"])
def test_one_pixel_image_never_crashes(command, files, tmp_path):
    build = WRITERS[command][0]
    result = run(*build(files, files["one"], tmp_path / "out"))
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), f"{result.exit_code}: {result.output}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_non_finite_values_are_refused_naming_the_key(files, tmp_path):
    prepared = files["prepared"]
    result = run("train", "heatmap", "--data", prepared, "--out", tmp_path / "r", "loss.alpha1=.nan")
    assert_one_error_line(result, "loss.alpha1")
    result = run("train", "heatmap", "--data", prepared, "--out", tmp_path / "r", "net.lr=.inf")
    assert_one_error_line(result, "net.lr")
    nan_yaml = files["nan_yaml"]
    result = run("train", "heatmap", "--config", nan_yaml, "--data", prepared, "--out", tmp_path / "r")
    assert_one_error_line(result, "loss.alpha1")
    result = run("train", "gan", "--data", prepared, "--out", tmp_path / "g", "--stage1", files["run"],
                 "loss.lambda_sty=.nan")  # fmt: skip
    assert_one_error_line(result, "loss.lambda_sty")
    assert not (tmp_path / "r").exists() and not (tmp_path / "g").exists()
    assert_one_error_line(run("lens", "import", files["wfs"], "--out", tmp_path / "l.safetensors"))
    assert not (tmp_path / "l.safetensors").exists()
    for option in ("--defocus-um", "--noise-sigma", "--prototype-scale-um"):
        result = run("capture", files["faces"], "--out", tmp_path / "c", "--lens", "defocus", option, "nan")
        assert_one_error_line(result, option)


def test_anonymize_with_an_identifiable_lens_needs_the_flag(files, tmp_path):
    args = _anonymize(files, files["face"], tmp_path / "out")
    args[args.index("--lens") + 1] = "open"
    refused = run(*args)
    assert_one_error_line(refused, "--allow-identifiable")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))
    allowed = run(*args, "--allow-identifiable")
    assert "privacy" in allowed.output and "Traceback" not in allowed.output


def test_markup_in_paths_is_printed_verbatim(files, tmp_path):
    out = tmp_path / "[bold]x[/bold] [red]"
    result = run("capture", files["face"], "--out", out, "--size", "32")
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    missing = tmp_path / "[b]gone[/b].png"
    result = run("capture", missing, "--out", tmp_path / "o2")
    assert_one_error_line(result, "[b]gone[/b].png")


def test_size_has_an_upper_bound(files, tmp_path):
    for command in ("capture", "psf"):
        build = WRITERS[command][0]
        args = [str(a) for a in build(files, files["faces"], tmp_path / "o")]
        args[args.index("--size") + 1] = "100000"
        assert_one_error_line(run(*args), "--size")
