"""The Camera module: energy, gradients, freezing, shapes, modes and bad input."""

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from privlens.optics import Camera, CameraConfig, make_camera
from privlens.optics.presets import LENS_PRESETS, prototype_coefficients


@pytest.fixture(scope="module")
def small_config() -> CameraConfig:
    return CameraConfig(image_size=64)


def test_capture_and_psf_shapes(small_config):
    camera = Camera(small_config, prototype_coefficients()).eval()
    images = torch.rand(4, 3, 64, 64)
    capture = camera(images)
    assert capture.image.shape == (4, 3, 64, 64)
    assert capture.psf.shape == (3, 64, 64)
    single = camera(images[0])
    assert single.image.shape == (1, 3, 64, 64)
    assert torch.allclose(single.image[0], capture.image[0], atol=1e-6)


def test_grey_images_use_the_panchromatic_psf(small_config):
    camera = Camera(small_config, prototype_coefficients()).eval()
    grey = torch.rand(2, 1, 64, 64)
    out = camera(grey).image
    assert out.shape == (2, 1, 64, 64)
    rgb = camera(grey.expand(-1, 3, -1, -1)).image
    assert torch.allclose(out[:, 0], rgb.mean(1), atol=1e-5)


def test_capture_energy_equals_scene_energy():
    # linear mode, no noise. A point on the axis: the whole PSF window lies inside the frame.
    camera = Camera(CameraConfig(image_size=128, clip=False), prototype_coefficients(15, 0.2)).eval()
    point = torch.zeros(1, 3, 128, 128)
    point[..., 64, 64] = torch.tensor([0.2, 0.5, 0.9])
    capture = camera(point).image
    assert torch.allclose(capture.sum(dim=(-2, -1)), point.sum(dim=(-2, -1)), rtol=1e-5)
    # An object inside the frame: the capture keeps all the light except the PSF tails that leave
    # the frame. Border loss computed independently: sum_p x(p) * sum_{q in frame} H(q - p).
    scene = torch.zeros(1, 3, 128, 128)
    scene[..., 56:72, 56:72] = torch.rand(3, 16, 16)
    capture = camera(scene).image.detach()
    psf = camera.psf().detach().double().numpy()
    frame = np.ones((128, 128))
    for c in range(3):
        kept = correlate2d(np.pad(frame, 64), psf[c], mode="valid")[:128, :128]
        # correlate2d aligns the PSF centre (64, 64) with each scene pixel p
        expected = float((scene[0, c].double().numpy() * kept).sum())
        assert float(capture[0, c].sum()) == pytest.approx(expected, rel=2e-5)
        assert expected > 0.99 * float(scene[0, c].sum())
    assert not torch.allclose(capture, scene, atol=1e-3)  # and it is blurred


def test_gradients_reach_every_unfrozen_coefficient(small_config):
    torch.manual_seed(0)
    camera = Camera(small_config, 0.1 * torch.randn(15)).train()
    scene = torch.rand(2, 3, 64, 64)
    capture = camera(scene).image
    loss = (capture - scene).square().mean() + capture[:, :, 20:30, 40:50].mean()
    loss.backward()
    grad = camera.coeffs_um.grad
    assert torch.isfinite(grad).all()
    assert torch.all(grad[:3] == 0)  # piston, tip, tilt frozen by default
    assert torch.all(grad[3:].abs() > 0)


def test_freezing_is_configurable(small_config):
    camera = Camera(small_config.replace(frozen_terms=(1, 4)), 0.1 * torch.ones(15))
    camera(torch.rand(1, 3, 64, 64)).image.square().mean().backward()
    grad = camera.coeffs_um.grad
    assert grad[0] == 0 and grad[3] == 0
    assert grad[1] != 0 and grad[2] != 0


def test_one_optimiser_step_moves_only_trainable_terms(small_config):
    camera = Camera(small_config, 0.1 * torch.ones(15))
    before = camera.coeffs_um.detach().clone()
    optimiser = torch.optim.Adam(camera.parameters(), lr=1e-2)
    (-(camera(torch.rand(1, 3, 64, 64)).image - 0.5).square().mean()).backward()
    optimiser.step()
    moved = (camera.coeffs_um.detach() - before).abs() > 0
    assert moved.tolist() == [False] * 3 + [True] * 12


def test_noise_only_in_training_unless_asked(small_config):
    camera = Camera(small_config.replace(noise_sigma=0.05, clip=False))
    scene = torch.full((1, 3, 64, 64), 0.5)
    camera.eval()
    assert torch.equal(camera(scene).image, camera(scene).image)
    camera.train()
    assert not torch.equal(camera(scene).image, camera(scene).image)
    always = Camera(small_config.replace(noise_sigma=0.05, noise_in_eval=True)).eval()
    assert not torch.equal(always(scene).image, always(scene).image)


def test_circular_mode_keeps_energy_at_borders(small_config):
    camera = Camera(small_config.replace(convolution="circular", clip=False), prototype_coefficients())
    scene = torch.rand(1, 3, 64, 64)
    capture = camera.eval()(scene).image
    assert torch.allclose(capture.sum(dim=(-2, -1)), scene.sum(dim=(-2, -1)), rtol=1e-4)


def test_gain_is_linear(small_config):
    scene = torch.rand(1, 3, 64, 64) * 0.4
    base = Camera(small_config).eval()(scene).image
    doubled = Camera(small_config.replace(gain=2.0)).eval()(scene).image
    assert torch.allclose(doubled, 2 * base, atol=1e-5)


def test_presets_differ_and_lowres_has_16_levels():
    scene = torch.rand(1, 3, 64, 64)
    captures = {name: make_camera(name, 64).eval()(scene).image for name in LENS_PRESETS}
    lowres = captures["lowres"][0, 0]
    assert torch.unique(lowres).numel() <= 16 * 16
    assert torch.equal(lowres[0:4, 0:4], lowres[0, 0].expand(4, 4))
    for a in LENS_PRESETS:
        for b in LENS_PRESETS:
            if a < b:
                assert not torch.allclose(captures[a], captures[b], atol=1e-3), (a, b)


def test_defocus_psf_is_frozen_and_only_noll4(small_config):
    camera = Camera(small_config, prototype_coefficients())
    h_f = camera.defocus_psf(0.5)
    assert not h_f.requires_grad
    assert torch.allclose(h_f, make_camera("defocus", 64, defocus_um=0.5).psf().detach(), atol=1e-6)


def test_project_clamps_to_limits(small_config):
    camera = Camera(small_config, torch.linspace(-2, 2, 15))
    camera.project_(1.0)
    assert camera.coeffs_um.abs().max() <= 1.0
    limits = torch.full((15,), 0.5)
    camera.project_(limits)
    assert camera.coeffs_um.abs().max() <= 0.5


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(2, 2, 64, 64), "C = 1 or 3"),
        (torch.rand(64, 64), "C = 1 or 3"),
        (torch.rand(1, 3, 32, 32), "built for 64x64"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
        (torch.rand(1, 3, 64, 64) * 3, r"\[0, 1\]"),
        (torch.randint(0, 255, (1, 3, 64, 64)), "float"),
    ],
)
def test_bad_images_are_refused(small_config, images, message):
    with pytest.raises(ValueError, match=message):
        Camera(small_config)(images)


def test_bad_coefficients_are_refused(small_config):
    with pytest.raises(ValueError, match="15 Zernike"):
        Camera(small_config, torch.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        Camera(small_config, torch.full((15,), float("nan")))


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"image_size": 0}, "image_size"),
        ({"pitch_m": -1.0}, "pitch_m"),
        ({"wavelengths_m": (550.0,)}, "wavelengths_m"),
        ({"aperture_radius_m": 5e-3}, "aperture_radius_m"),
        ({"frozen_terms": (20,)}, "frozen_terms"),
        ({"convolution": "valid"}, "convolution"),
        ({"lowres_size": 999}, "lowres_size"),
    ],
)
def test_bad_settings_name_the_setting(change, name):
    with pytest.raises(ValueError, match=name):
        CameraConfig(**change)


def test_unknown_setting_in_mapping():
    with pytest.raises(ValueError, match="unknown camera setting.*colour"):
        CameraConfig.from_dict({"colour": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(small_config):
    camera = Camera(small_config, prototype_coefficients()).eval()
    scene = torch.rand(2, 3, 64, 64)
    cpu = camera(scene).image
    gpu = camera.cuda()(scene.cuda()).image.cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


def test_fixed_lens_psf_is_reused_until_the_coefficients_change():
    """Inference reuses the PSF; an in-place change of the coefficients or a training step does not."""
    camera = make_camera("prototype", 32)
    with torch.no_grad():
        first = camera.psf()
        assert camera.psf() is first  # cached
        camera.coeffs_um[3] += 0.5
        changed = camera.psf()
    assert changed is not first and not torch.allclose(changed, first)
    assert torch.allclose(changed, camera._psf_of(camera.effective_coeffs_um().detach()))
    trained = camera.psf()  # gradient recorded: recomputed, differentiable
    assert trained.requires_grad and trained is not changed
    trained.sum().backward()
    assert camera.coeffs_um.grad is not None
