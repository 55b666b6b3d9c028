"""The Richardson–Lucy stopping rule, the blind attacker's PSF estimate and the capture noise."""

import pytest
import torch

from privlens.attacks.blind import calibration_target, capture_target, estimate_psf
from privlens.attacks.capture import noisy_readout, sensor_captures
from privlens.attacks.deconvolution import PlateauStop, richardson_lucy, richardson_lucy_stopping
from privlens.eval.quality import psnr
from privlens.optics import make_camera


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


class Curve(PlateauStop):
    """A PSNR that rises to 20 dB at step 50, then falls by 0.1 dB per step."""

    def measure(self, step, estimate):
        return 20 - 0.1 * abs(step - 50)


def test_plateau_rule_stops_after_patience_checks_without_gain():
    rule = Curve(None, check_every=10, patience=3, max_iterations=10_000)
    stopped = next(step for step in range(1, 10_001) if rule(step, None))
    assert stopped == 80 and rule.best == 50 and rule.stopped_by == "plateau"
    assert sorted(rule.history) == [10, 20, 30, 40, 50, 60, 70, 80]
    capped = Curve(None, check_every=10, patience=100, max_iterations=95)
    assert next(step for step in range(1, 10_001) if capped(step, None)) == 95
    assert capped.stopped_by == "cap" and capped.best == 50


def test_rl_rule_picks_the_psnr_best_iteration_beyond_the_old_cap(lfw):
    faces = torch.nn.functional.interpolate(lfw[:3], size=(32, 32), mode="area")
    camera = make_camera("defocus", 32)
    psf = camera.psf().detach()
    captures = sensor_captures(camera, faces, read_noise=0.0, quantise=False)
    rule = richardson_lucy_stopping(captures, faces, psf, PlateauStop(faces, 50, 2, 1000))
    assert rule.best > 200  # noise-free: PSNR keeps rising past the old cap of 200
    assert rule.best_psnr == max(rule.history.values())
    direct = float(psnr(richardson_lucy(captures, psf, rule.best), faces).mean())
    assert direct == pytest.approx(rule.history[rule.best], abs=1e-3)
    noisy = sensor_captures(camera, faces, read_noise=0.03)
    early = richardson_lucy_stopping(noisy, faces, psf, PlateauStop(faces, 5, 3, 1000))
    assert early.stopped_by == "plateau" and early.best < rule.best  # noise: stop earlier


def test_blind_psf_from_a_calibration_target_is_close_to_the_true_one():
    camera = make_camera("defocus", 64)
    truth = camera.psf().detach()
    target = calibration_target(64)
    exact = camera.eval().image(target[None], truth)[0]
    assert float((estimate_psf(exact, target, 1e-6) - truth).abs().sum() / 3) < 0.08
    mean, target = capture_target(camera, frames=64, read_noise=0.01)
    error = float((estimate_psf(mean, target, 1.0, floor=2.0) - truth).abs().sum() / 3)
    other = float((make_camera("prototype", 64).psf().detach() - truth).abs().sum() / 3)
    assert error < 0.2 < other


def test_readout_noise_has_the_stated_level_and_is_quantised():
    flat = torch.full((4, 3, 32, 32), 0.5)
    out = noisy_readout(flat, 0.02, quantise=False, generator=torch.Generator().manual_seed(0))
    assert float(out.std()) == pytest.approx(0.02, rel=0.05)
    stored = noisy_readout(flat, 0.02, generator=torch.Generator().manual_seed(0))
    assert torch.equal(stored, torch.round(stored * 255) / 255)
    with pytest.raises(ValueError):
        noisy_readout(flat, -1.0)
