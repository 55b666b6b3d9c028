"""The physical sensor noise model: statistics, quantisation, gradients, seeding, camera wiring."""

import json

import pytest
import torch
from safetensors.torch import save_file

from privlens.optics import Camera, CameraConfig, load_lens
from privlens.optics.noise import (
    SensorNoise,
    add_sensor_noise,
    electrons_at_full_scale,
    quantise,
    sensor_readout,
)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize(
    ("level", "full_scale", "read"), [(0.5, 4000.0, 2.5), (0.02, 1000.0, 3.0), (0.0, 4000.0, 2.5)]
)
def test_mean_and_variance_follow_photon_count_and_read_noise(exact, level, full_scale, read):
    noise = SensorNoise(full_scale, read, 10)
    signal = torch.full((200_000,), level, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    electrons = add_sensor_noise(signal, noise, exact=exact, generator=generator) * full_scale
    photons = level * full_scale
    expected_var = photons + read**2
    # standard errors over 2e5 samples: mean sqrt(var/N), variance var*sqrt(2/N) (+ Poisson excess)
    assert float(electrons.mean()) == pytest.approx(photons, abs=5 * (expected_var / 2e5) ** 0.5 + 1e-9)
    assert float(electrons.var()) == pytest.approx(expected_var, rel=0.02)


def test_shot_noise_dominates_bright_pixels_read_noise_dark_ones():
    noise = SensorNoise(4000.0, 2.5, 10)
    generator = torch.Generator().manual_seed(0)
    bright = add_sensor_noise(torch.full((50_000,), 0.5), noise, generator=generator)
    dark = add_sensor_noise(torch.zeros(50_000), noise, generator=generator)
    assert float(bright.std()) == pytest.approx((2000 + 6.25) ** 0.5 / 4000, rel=0.03)  # SNR ~45
    assert float(dark.std()) == pytest.approx(2.5 / 4000, rel=0.03)


def test_quantisation_levels_and_clipping():
    values = torch.linspace(-0.2, 1.2, 10_001)
    for bits in (8, 10):
        stored = quantise(values, bits, straight_through=False)
        levels = torch.unique(stored)
        assert len(levels) == 2**bits
        assert float(levels.min()) == 0.0 and float(levels.max()) == 1.0
        assert torch.allclose(levels * (2**bits - 1), torch.round(levels * (2**bits - 1)), atol=1e-4)
        inside = (values >= 0) & (values <= 1)
        assert float((stored - values)[inside].abs().max()) <= 0.5 / (2**bits - 1) + 1e-6


def test_gradients_flow_through_noise_and_straight_through_rounding():
    signal = torch.full((4, 3, 8, 8), 0.3, requires_grad=True)
    noise = SensorNoise(1000.0, 2.5, 8)
    out = sensor_readout(signal, noise, generator=torch.Generator().manual_seed(0))
    out.sum().backward()
    assert signal.grad is not None and torch.isfinite(signal.grad).all()
    # d/dv of v + sqrt(vF + s^2) eps / F is 1 + eps / (2 sqrt(vF + s^2)): around 1, never 0
    assert float(signal.grad.mean()) == pytest.approx(1.0, abs=0.05)
    assert float(signal.grad.std()) > 0.005  # the noise's own dependence on the signal
    # rounding alone passes the gradient unchanged inside [0, 1]
    plain = torch.tensor([0.2, 0.5, 0.9], requires_grad=True)
    quantise(plain, 4).sum().backward()
    assert torch.equal(plain.grad, torch.ones(3))


def test_seeded_draws_are_reproducible():
    signal = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    noise = SensorNoise(4000.0, 2.5, 10)
    for exact in (True, False):
        first = sensor_readout(signal, noise, exact=exact, generator=torch.Generator().manual_seed(7))
        second = sensor_readout(signal, noise, exact=exact, generator=torch.Generator().manual_seed(7))
        other = sensor_readout(signal, noise, exact=exact, generator=torch.Generator().manual_seed(8))
        assert torch.equal(first, second)
        assert not torch.equal(first, other)


def test_larger_pixels_collect_more_electrons():
    config = CameraConfig()
    assert electrons_at_full_scale(config) == pytest.approx(4000.0)
    assert electrons_at_full_scale(config.replace(image_size=64)) == pytest.approx(16 * 4000.0)
    assert electrons_at_full_scale(config, 16) == pytest.approx(256 * 4000.0)


def test_camera_capture_api():
    camera = Camera(CameraConfig(image_size=32)).eval()
    scene = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    clean = camera(scene).image
    with torch.no_grad():
        stored = camera.capture(scene, generator=torch.Generator().manual_seed(0)).image
    levels = stored * 1023
    assert torch.allclose(levels, torch.round(levels), atol=1e-3)  # 10-bit values
    # noise level: 64x electrons at 32 px (pixels 8x the sensor pitch): sigma ~ sqrt(v / 256000)
    residual = (stored - clean).std()
    assert 0.3e-3 < float(residual.detach()) < 3e-3
    quantised_only = camera.capture(scene, noise=False).image
    assert float((quantised_only - clean).detach().abs().max()) <= 0.5 / 1023 + 1e-6
    # training: differentiable, gradients reach the lens
    camera.train()
    camera.capture(scene, generator=torch.Generator().manual_seed(1)).image.mean().backward()
    assert camera.coeffs_um.grad is not None and camera.coeffs_um.grad[3:].abs().sum() > 0
    # forward applies the sensor only when the config says so
    noisy = Camera(CameraConfig(image_size=32, sensor_noise=True)).eval()
    with torch.no_grad():
        assert not torch.equal(noisy(scene).image, clean.detach())


def test_lowres_sensor_noise_is_per_large_pixel():
    camera = Camera(CameraConfig(image_size=32, lowres_size=8)).eval()
    scene = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stored = camera.capture(scene, generator=torch.Generator().manual_seed(0)).image
    blocks = stored.reshape(1, 3, 8, 4, 8, 4)
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_old_lens_files_without_noise_fields_still_load(tmp_path):
    old = CameraConfig().to_dict()
    for name in (
        "full_scale_e",
        "read_noise_e",
        "bit_depth",
        "sensor_noise",
        "pupil_sampling",
        "max_pupil_samples",
    ):
        old.pop(name)
    metadata = {"format": "privlens-lens", "version": "1", "camera": json.dumps(old), "provenance": "{}"}
    path = tmp_path / "old.safetensors"
    save_file({"coeffs_um": torch.zeros(15)}, str(path), metadata)
    camera = load_lens(path, image_size=32, sensor_noise=True, full_scale_e=1000.0)
    assert camera.config.sensor_noise and camera.config.full_scale_e == 1000.0
    assert camera.config.read_noise_e == 2.5 and camera.config.bit_depth == 10


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"full_scale_e": 0.0}, "full_scale_e"),
        ({"read_noise_e": -1.0}, "read_noise_e"),
        ({"bit_depth": 0}, "bit_depth"),
    ],
)
def test_bad_noise_settings_name_the_setting(change, name):
    with pytest.raises(ValueError, match=name):
        CameraConfig(**change)
