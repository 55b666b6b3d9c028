"""The robust Stage I objective: the closed-form Wiener term at the physical sensor noise."""

import dataclasses

import pytest
import torch

from privlens.attacks.wiener_bound import wiener_privacy_db
from privlens.optics import make_camera
from privlens.optics.noise import SensorNoise, equivalent_variance
from privlens.train.config import load_config
from privlens.train.losses import Stage1Loss
from privlens.train.objectives import physical_noise_std, robust_losses
from privlens.train.stage1_config import Stage1Config


def test_physical_noise_std_is_shot_read_and_rounding_of_one_capture_pixel():
    camera = make_camera("open", 64)  # 4 x 4 sensor pixels of 4000 e- each per capture pixel
    expected = 0.4 / 64_000 + (2.5 / 64_000) ** 2 + 1 / (12 * 1023**2)
    assert physical_noise_std(camera.config, 0.4) ** 2 == pytest.approx(expected)
    assert equivalent_variance(SensorNoise(100.0, 0.0, 8), 0.0) == pytest.approx(1 / (12 * 255**2))
    with pytest.raises(ValueError):
        equivalent_variance(SensorNoise(100.0, 0.0, 8), -0.1)


def test_shipped_robust_config_models_the_physical_sensor():
    config = load_config(Stage1Config, "configs/shipped/stage1_robust_64.yaml")
    assert config.loss.objective == "robust" and config.camera.sensor_noise
    # the embedded faces prepared at 64 px have mean level 0.42 (train split)
    physical = physical_noise_std(make_camera("open", config.data.image_size).config, 0.42)
    assert config.loss.robust_noise == pytest.approx(physical, rel=0.05)


def test_robust_term_is_the_wiener_psnr_at_the_configured_noise(one_torch_thread):
    config = load_config(Stage1Config, "configs/shipped/stage1_robust_64.yaml").loss
    generator = torch.Generator().manual_seed(0)
    scene = torch.rand(4, 3, 32, 32, generator=generator)
    camera = make_camera("defocus", 32)
    psf = camera.psf()
    zero = torch.zeros(())
    losses = Stage1Loss(zero, zero, zero, torch.tensor(0.5), zero, zero)
    out = robust_losses(losses, scene, psf, config)
    privacy = wiener_privacy_db(scene, psf, config.robust_noise**2)
    optics, total = float(out.optics.detach()), float(out.total.detach())
    assert optics == pytest.approx(config.robust_weight * float(privacy.detach()) / 10, rel=1e-5)
    assert total == pytest.approx(optics + config.alpha2 * 0.5, rel=1e-5)
    out.total.backward()
    assert camera.coeffs_um.grad is not None and float(camera.coeffs_um.grad.abs().sum()) > 0


def test_robust_target_stops_the_privacy_push_once_reached(one_torch_thread):
    """With ``robust_target_db`` the term is a hinge: above the target it is the plain term shifted
    by the target (same gradient), below it zero with no gradient on the lens."""
    base = load_config(Stage1Config, "configs/shipped/stage1_robust_64.yaml").loss
    generator = torch.Generator().manual_seed(1)
    scene = torch.rand(4, 3, 32, 32, generator=generator)
    zero = torch.zeros(())
    losses = Stage1Loss(zero, zero, zero, zero, zero, zero)
    camera = make_camera("defocus", 32)
    level = float(wiener_privacy_db(scene, camera.psf(), base.robust_noise**2).detach())
    above = dataclasses.replace(base, robust_target_db=level - 2.0)
    out = robust_losses(losses, scene, camera.psf(), above)
    assert float(out.optics.detach()) == pytest.approx(base.robust_weight * 2.0 / 10, rel=1e-4)
    out.optics.backward()
    assert float(camera.coeffs_um.grad.abs().sum()) > 0
    camera = make_camera("defocus", 32)
    below = dataclasses.replace(base, robust_target_db=level + 2.0)
    out = robust_losses(losses, scene, camera.psf(), below)
    assert float(out.optics.detach()) == 0.0
    out.optics.backward()
    assert camera.coeffs_um.grad is None or float(camera.coeffs_um.grad.abs().sum()) == 0.0


def test_adversary_moves_the_lens_only_through_its_psnr_and_learns_on_detached_captures(one_torch_thread):
    """The lens's gradient from the adversary term lowers the attacker's PSNR (a small step
    against it does); the attacker's own update leaves the lens without gradient and lowers
    its L1 on the same captures."""
    from privlens.attacks.inversion import InversionUNet
    from privlens.train.objectives import adversary_psnr, adversary_update

    torch.manual_seed(0)
    scene = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    camera = make_camera("defocus", 32)
    adversary = InversionUNet(3, 4, 3)
    optimizer = torch.optim.Adam(adversary.parameters(), lr=1e-2)
    capture = camera(scene).image
    first = adversary_update(adversary, optimizer, capture, scene)
    assert camera.coeffs_um.grad is None
    for _ in range(20):
        last = adversary_update(adversary, optimizer, capture, scene)
    assert last < first
    before = adversary_psnr(adversary, camera(scene).image, scene)
    before.backward()
    grad = camera.coeffs_um.grad.clone()
    assert float(grad.abs().sum()) > 0
    with torch.no_grad():
        camera.coeffs_um -= 0.02 * grad / grad.norm()
        after = adversary_psnr(adversary, camera(scene).image, scene)
    assert float(after) < float(before.detach())


def test_deconvolving_adversary_starts_as_the_restoration_and_the_lens_feels_it_through_the_psf(
    one_torch_thread,
):
    """adversary_frontend tikhonov: before training it returns the regularised least-squares
    restoration with the lens's PSF (its U-Net is residual), which beats the raw capture; its own
    update leaves the lens without gradient and moves its learned regularisation; the lens's
    gradient reaches it through the PSF as well as the capture."""
    from privlens.attacks.deconvolution import tikhonov_cg
    from privlens.eval.quality import psnr
    from privlens.train.objectives import DeconvolvingAdversary, adversary_psnr, adversary_update

    torch.manual_seed(0)
    coarse = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    scene = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    camera = make_camera("defocus", 32)
    adversary = DeconvolvingAdversary(3, 4, log10_lambda=-2.0)
    capture, psf = camera(scene)
    expected = tikhonov_cg(capture.detach(), psf.detach(), 1e-2, 20, "linear")
    with torch.no_grad():
        estimate = adversary(capture, psf)
    assert torch.allclose(estimate, expected, atol=1e-5)
    assert float(psnr(estimate, scene).mean()) > float(psnr(capture.detach(), scene).mean()) + 0.3
    with pytest.raises(ValueError, match="PSF"):
        adversary_psnr(adversary, capture, scene)
    optimizer = torch.optim.Adam(adversary.parameters(), lr=1e-2)
    lam = float(adversary.log10_lambda.detach())
    adversary_update(adversary, optimizer, capture, scene, psf)
    assert camera.coeffs_um.grad is None and float(adversary.log10_lambda.detach()) != lam
    capture, psf = camera(scene)
    attacked = adversary_psnr(adversary, capture.detach(), scene, psf)
    through_psf = torch.autograd.grad(attacked, camera.coeffs_um)[0]
    assert float(through_psf.abs().sum()) > 0


def test_adversary_needs_the_robust_objective():
    from privlens.train.config import ConfigError

    with pytest.raises(ConfigError, match="adversary_weight"):
        load_config(Stage1Config, None, ["loss.objective=paper", "loss.adversary_weight=1"])
    with pytest.raises(ConfigError, match="adversary_warmup"):
        load_config(Stage1Config, None, ["loss.objective=robust", "loss.adversary_warmup=-1"])
    with pytest.raises(ConfigError, match="adversary_frontend"):
        load_config(Stage1Config, None, ["loss.objective=robust", "loss.adversary_frontend=wiener"])
    with pytest.raises(ConfigError, match="train.max_seconds"):
        load_config(Stage1Config, None, ["train.max_seconds=0"])
