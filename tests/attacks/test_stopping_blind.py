"""The Richardson–Lucy stopping rule, the blind attacker's PSF estimate and the capture noise."""

import math

import pytest
import torch

from privlens.attacks.blind import calibration_target, capture_target, estimate_psf
from privlens.attacks.capture import CaptureNoise, sensor_captures
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
    captures = sensor_captures(camera, faces, CaptureNoise(enabled=False, bit_depth=24))
    rule = richardson_lucy_stopping(captures, faces, psf, PlateauStop(faces, 50, 2, 1000))
    assert rule.best > 200  # noise-free: PSNR keeps rising past the old cap of 200
    assert rule.best_psnr == max(rule.history.values())
    direct = float(psnr(richardson_lucy(captures, psf, rule.best), faces).mean())
    assert direct == pytest.approx(rule.history[rule.best], abs=1e-3)
    noisy = sensor_captures(camera, faces, CaptureNoise(full_scale_e=20.0))  # a very dark room
    early = richardson_lucy_stopping(noisy, faces, psf, PlateauStop(faces, 5, 3, 1000))
    assert early.stopped_by == "plateau" and early.best < rule.best  # noise: stop earlier


def test_blind_psf_from_a_calibration_target_is_close_to_the_true_one():
    camera = make_camera("defocus", 64)
    truth = camera.psf().detach()
    target = calibration_target(64)
    exact = camera.eval().image(target[None], truth)[0]
    assert float((estimate_psf(exact, target, 1e-6) - truth).abs().sum() / 3) < 0.08
    mean, target = capture_target(camera, frames=64)
    error = float((estimate_psf(mean, target, 1.0, floor=2.0) - truth).abs().sum() / 3)
    other = float((make_camera("prototype", 64).psf().detach() - truth).abs().sum() / 3)
    assert error < 0.2 < other


@pytest.mark.parametrize("lens", ["open", "lowres"])
def test_captures_follow_the_physical_noise_model_and_are_quantised(lens):
    # a flat grey scene: every stored pixel is (Poisson(v F) + N(0, r^2)) / F, rounded to 2^b - 1
    # levels, with F the electrons of one capture pixel (4 x 4 sensor pixels at 64 px, the large
    # pixels of the lowres sensor 4 x 4 more): mean v, variance v / F + (r / F)^2 + 1 / (12 L^2)
    camera = make_camera(lens, 64, convolution="circular")  # no dark border from zero padding
    noise = CaptureNoise(full_scale_e=40.0, read_noise_e=3.0, bit_depth=8)
    level = 0.4
    flat = torch.full((64, 3, 64, 64), level)
    stored = sensor_captures(camera, flat, noise, seed=3)
    side = 4 * (1 if lens == "open" else 4)
    electrons = 40.0 * side**2
    assert noise.sensor(camera).full_scale_e == pytest.approx(electrons)
    levels = 255.0
    expected = level / electrons + (3.0 / electrons) ** 2 + 1 / (12 * levels**2)
    assert noise.variance(camera, level) == pytest.approx(expected)
    values = stored if lens == "open" else stored[..., ::4, ::4]  # one value per large pixel
    assert float(values.mean()) == pytest.approx(level, abs=4 * math.sqrt(expected / values.numel()) + 2e-4)
    assert float(values.var()) == pytest.approx(expected, rel=0.06)
    assert torch.equal(stored, torch.round(stored * levels) / levels)  # quantised to 8 bits
    default = sensor_captures(camera, flat[:2])  # the camera's own model: 10 bits
    assert torch.equal(default, torch.round(default * 1023) / 1023) and float(default.std()) > 0
    quiet = sensor_captures(camera, flat[:2], CaptureNoise(enabled=False))
    assert torch.equal(quiet, torch.full_like(quiet, round(level * 1023) / 1023))
    assert torch.equal(sensor_captures(camera, flat[:2], seed=1), sensor_captures(camera, flat[:2], seed=1))


def test_capture_noise_settings_are_checked():
    for bad in ({"full_scale_e": 0.0}, {"read_noise_e": -1.0}, {"bit_depth": 0}, {"full_scale_e": math.nan}):
        with pytest.raises(ValueError):
            CaptureNoise(**bad)
    described = CaptureNoise(bit_depth=8).describe(make_camera("open", 64))
    assert described["bit_depth"] == 8 and described["full_scale_e_per_capture_pixel"] == 64_000


def test_rl_attack_without_a_finite_tuning_psnr_returns_the_capture():
    """A degenerate (estimated) PSF whose every check is NaN leaves 0 iterations: the attack is
    the capture itself, not a crash (make demo hit this with the robust lens's blind PSF)."""
    from privlens.attacks.deconvolution import PlateauStop
    from privlens.attacks.suite import richardson_lucy_attack

    originals = torch.rand(2, 3, 8, 8)
    rule = PlateauStop(originals, check_every=1, patience=2, max_iterations=5)
    nan = torch.full_like(originals, float("nan"))
    for step in range(1, 6):
        if rule(step, nan):
            break
    assert rule.best == 0
    captures = torch.rand(2, 3, 8, 8)
    assert torch.equal(richardson_lucy_attack(torch.ones(3, 3, 3) / 9, 0, "linear")(captures), captures)
    restored = richardson_lucy_attack(torch.ones(3, 3, 3) / 9, 3, "linear")(captures)
    assert restored.shape == captures.shape and not torch.equal(restored, captures)


def test_inversion_early_stop_waits_for_min_steps():
    """With a frozen model (learning rate 0) the validation PSNR never improves: the rule stops
    after ``patience`` checks, or at ``min_steps`` when that is later."""
    from privlens.attacks.inversion import InversionTraining, _fit

    torch.manual_seed(0)
    originals = torch.rand(4, 3, 16, 16)
    captures = originals.flip(-1)

    def batch_of(step):
        return captures, originals

    frozen = dict(steps=200, batch_size=4, learning_rate=0.0, width=4, depth=2, check_every=10, patience=3)
    early = _fit(3, torch.device("cpu"), batch_of, InversionTraining(**frozen), None, (captures, originals))
    assert early.trained_steps == 40  # the first check sets the best, three more without a gain
    late = _fit(
        3,
        torch.device("cpu"),
        batch_of,
        InversionTraining(**frozen, min_steps=120),
        None,
        (captures, originals),
    )
    assert late.trained_steps == 120


def test_the_full_suite_and_the_command_share_one_inversion_recipe():
    """``privlens attack``'s ``--inversion-steps N`` is the suite default scaled: no stop before N / 2."""
    from privlens.attacks.suite import AttackSettings, full_inversion

    assert AttackSettings().inversion == full_inversion()
    recipe = full_inversion(800, 8)
    assert (recipe.steps, recipe.width, recipe.min_steps, recipe.batch_size) == (800, 8, 400, 16)


def test_blind_attacker_tries_every_noise_floor_and_keeps_the_capture_when_all_are_empty(monkeypatch):
    """``AttackSettings.blind_floors`` is searched (it once was ignored: the floor was always 3),
    and an estimate with nothing above its floor is never used: with every estimate empty (a
    PSF wider than the target's margin gave 6.5 dB, an all-black recovery) the PSF is a delta."""
    import privlens.attacks.suite as suite
    from privlens.attacks.suite import AttackSettings, _blind_psf

    faces = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    camera = make_camera("defocus", 32)
    settings = AttackSettings(
        blind_eps=(1e-3,), blind_floors=(1.0, 2.0), blind_frames=4, wiener_lambdas=(1e-3,)
    )
    seen = []
    real = suite.estimate_psf

    def spy(capture, target, eps, floor=3.0):
        seen.append(floor)
        return real(capture, target, eps, floor)

    monkeypatch.setattr(suite, "estimate_psf", spy)
    psf, choice = _blind_psf(camera, faces, faces, settings)
    assert sorted(seen) == [1.0, 2.0] and "noise floor" in choice.note
    assert torch.allclose(psf.sum(dim=(-2, -1)), torch.ones(3))
    monkeypatch.setattr(
        suite, "estimate_psf", lambda capture, target, eps, floor=3.0: torch.zeros_like(capture)
    )
    psf, choice = _blind_psf(camera, faces, faces, settings)
    assert float(psf[:, 16, 16].min()) == 1.0 and float(psf.sum()) == 3.0
    assert "no deconvolution" in choice.note
