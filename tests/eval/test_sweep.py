"""The sweep's attack settings: the inversion's size is the user's to raise, and bad sizes are refused."""

from __future__ import annotations

from typer.testing import CliRunner

from privlens.attacks.capture import DEFAULT_NOISE
from privlens.cli import app
from privlens.eval.sweep import SWEEP_INVERSION_STEPS, SWEEP_INVERSION_WIDTH, sweep_settings


def test_sweep_settings_carry_the_inversion_size_and_the_hybrid_choice():
    default = sweep_settings()
    assert (default.inversion.steps, default.inversion.width) == (
        SWEEP_INVERSION_STEPS,
        SWEEP_INVERSION_WIDTH,
    )
    assert default.hybrid and default.noise == DEFAULT_NOISE
    full = sweep_settings(DEFAULT_NOISE, hybrid=False, inversion_steps=6000, inversion_width=16)
    assert (full.inversion.steps, full.inversion.width, full.hybrid) == (6000, 16, False)


def test_sweep_refuses_an_empty_inversion(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--defocus",
            "1",
            "--inversion-steps",
            "0",
        ],
    )
    assert result.exit_code == 2 and "--inversion-steps" in result.output
