"""The command-line noise options: physical sensor settings, old options refused with one line."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from privlens.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, *needles):
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result.exit_code == 2 and len(lines) == 1 and all(n in lines[0] for n in needles)


def test_capture_sensor_noise_is_physical_and_noise_sigma_is_refused(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.full((32, 32, 3), 100, dtype=np.uint8)).save(source / "grey.png")
    quiet = invoke("capture", source, "--out", tmp_path / "q", "--lens", "defocus", "--size", "32",
                   "--convolution", "circular", "--no-sensor-noise")  # fmt: skip
    noisy = invoke("capture", source, "--out", tmp_path / "n", "--lens", "defocus", "--size", "32",
                   "--convolution", "circular", "--sensor-noise", "--full-scale-e", "5")  # fmt: skip
    assert quiet.exit_code == 0 and noisy.exit_code == 0, noisy.output
    flat = np.asarray(Image.open(tmp_path / "q" / "grey.png"), dtype=float)
    grainy = np.asarray(Image.open(tmp_path / "n" / "grey.png"), dtype=float)
    assert flat.std() < 0.6  # a blurred flat scene stays flat
    # 5 e- per sensor pixel, 8 x 8 sensor pixels per 32-px capture pixel = 320 e- at full scale;
    # grey 100/255: std sqrt(0.392 / 320) = 0.035 (8.9 grey levels)
    assert 0.032 * 255 < grainy.std() < 0.038 * 255
    refused = invoke("capture", source, "--out", tmp_path / "x", "--noise-sigma", "0.01")
    assert one_error_line(refused, "--noise-sigma", "--sensor-noise")
    bad = invoke("capture", source, "--out", tmp_path / "x", "--sensor-noise", "--full-scale-e", "-1")
    assert one_error_line(bad, "full_scale_e")
    assert not (tmp_path / "x").exists()


def test_attack_refuses_the_old_noise_options(tmp_path):
    for option in (["--read-noise", "0.01"], ["--no-quantise"], ["--bit-depth", "0"]):
        result = invoke("attack", "--out", tmp_path / "a", "--size", "32", *option)
        assert one_error_line(result), (option, result.output)
    assert not (tmp_path / "a").exists()


def test_capture_stores_the_sensor_readout_by_default_and_its_seed_repeats_it(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.full((32, 32, 3), 100, dtype=np.uint8)).save(source / "grey.png")

    def grain(name, *options):
        result = invoke("capture", source, "--out", tmp_path / name, "--lens", "defocus", "--size", "32",
                        "--convolution", "circular", "--full-scale-e", "5", *options)  # fmt: skip
        assert result.exit_code == 0, result.output
        return np.asarray(Image.open(tmp_path / name / "grey.png"), dtype=float)

    default, again, other = grain("a"), grain("b", "--seed", "0"), grain("c", "--seed", "1")
    assert 0.032 * 255 < default.std() < 0.038 * 255  # noisy without asking (320 e- at full scale)
    assert np.array_equal(default, again)  # seeded: the same files every run
    assert not np.array_equal(default, other)
    refused = invoke("capture", source, "--out", tmp_path / "x", "--seed", "-1")
    assert one_error_line(refused, "--seed")
    assert not (tmp_path / "x").exists()
