"""Convolution against a direct (scipy) reference, energy conservation, large pixels, noise."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from privlens.optics.sensor import (
    add_read_noise,
    convolve,
    large_pixel_sensor,
    linear_fft_size,
    next_fast_fft_size,
    psf_to_periodic,
)


def reference_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' linear convolution with the kernel centre at index K // 2."""
    full = convolve2d(image, kernel, mode="full")
    c = kernel.shape[0] // 2
    return full[c : c + image.shape[0], c : c + image.shape[1]]


def reference_circular(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = np.zeros_like(image)
    c = kernel.shape[0] // 2
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out += kernel[i, j] * np.roll(image, (i - c, j - c), axis=(0, 1))
    return out


@pytest.mark.parametrize(("size", "ksize"), [(16, 16), (16, 7), (20, 32), (9, 4)])
def test_linear_convolution_matches_direct_reference(size, ksize):
    generator = torch.Generator().manual_seed(size * 100 + ksize)
    image = torch.rand(2, 3, size, size, generator=generator, dtype=torch.float64)
    psf = torch.rand(3, ksize, ksize, generator=generator, dtype=torch.float64)
    out = convolve(image, psf, "linear")
    for b in range(2):
        for c in range(3):
            expected = reference_same(image[b, c].numpy(), psf[c].numpy())
            np.testing.assert_allclose(out[b, c].numpy(), expected, atol=1e-10)


@pytest.mark.parametrize(("size", "ksize"), [(12, 12), (12, 5), (8, 20)])
def test_circular_convolution_matches_direct_reference(size, ksize):
    generator = torch.Generator().manual_seed(size + ksize)
    image = torch.rand(1, 1, size, size, generator=generator, dtype=torch.float64)
    psf = torch.rand(1, ksize, ksize, generator=generator, dtype=torch.float64)
    out = convolve(image, psf, "circular")
    expected = reference_circular(image[0, 0].numpy(), psf[0].numpy())
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-10)


def test_periodic_psf_keeps_its_sum():
    psf = torch.rand(3, 40, 40, dtype=torch.float64)
    assert torch.allclose(psf_to_periodic(psf, (16, 16)).sum(dim=(-2, -1)), psf.sum(dim=(-2, -1)))


def test_fft_sizes():
    assert next_fast_fft_size(383) == 384
    assert next_fast_fft_size(257) == 270
    assert linear_fft_size(256, 256) == 384


def test_linear_convolution_conserves_energy_away_from_borders():
    image = torch.zeros(1, 3, 64, 64, dtype=torch.float64)
    image[..., 24:40, 24:40] = 1.0
    psf = torch.rand(3, 15, 15, dtype=torch.float64)
    psf /= psf.sum(dim=(-2, -1), keepdim=True)
    out = convolve(image, psf, "linear")
    assert torch.allclose(out.sum(dim=(-2, -1)), image.sum(dim=(-2, -1)), rtol=1e-12)


def test_circular_wraps_but_linear_does_not():
    image = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    image[..., 0, 0] = 1.0
    psf = torch.zeros(1, 5, 5, dtype=torch.float64)
    psf[0, 2, 0] = 1.0  # moves light 2 px to the left: out of the frame
    linear = convolve(image, psf, "linear")
    circular = convolve(image, psf, "circular")
    assert linear.sum() == pytest.approx(0.0, abs=1e-12)
    assert circular.sum() == pytest.approx(1.0)


def test_unknown_mode():
    with pytest.raises(ValueError, match="linear"):
        convolve(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 3), "valid")


def test_large_pixel_sensor_averages_blocks():
    image = torch.arange(64.0).reshape(1, 1, 8, 8)
    out = large_pixel_sensor(image, 2)
    assert out.shape == image.shape
    assert out[0, 0, 0, 0] == image[0, 0, :4, :4].mean()
    assert out[0, 0, 7, 7] == image[0, 0, 4:, 4:].mean()
    assert torch.unique(out).numel() == 4


def test_read_noise_statistics():
    image = torch.full((1, 1, 200, 200), 0.5)
    noisy = add_read_noise(image, 0.05, torch.Generator().manual_seed(0))
    assert float((noisy - image).std()) == pytest.approx(0.05, rel=0.05)
    assert torch.equal(add_read_noise(image, 0.0), image)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("kernel_channels", [3, 1])
def test_hand_written_backward_matches_autograd(mode, kernel_channels):
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(2, 3, 12, 12, generator=generator, dtype=torch.float64, requires_grad=True)
    psf = torch.rand(kernel_channels, 12, 12, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 3, 12, 12, generator=generator, dtype=torch.float64)
    (convolve(images, psf, mode) * weights).sum().backward()
    ours = images.grad.clone(), psf.grad.clone()
    images.grad = psf.grad = None
    # reference: the same convolution written with plain, autograd-differentiated FFTs
    fft_h = 12 if mode == "circular" else linear_fft_size(12, 12)
    kernel = psf_to_periodic(psf, (fft_h, fft_h))
    padded = torch.nn.functional.pad(images, (0, fft_h - 12, 0, fft_h - 12))
    reference = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(kernel), s=(fft_h, fft_h))
    (reference[..., :12, :12] * weights).sum().backward()
    assert torch.allclose(ours[0], images.grad, atol=1e-10)
    assert torch.allclose(ours[1], psf.grad, atol=1e-10)
