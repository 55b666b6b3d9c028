"""The closed-form error of the best linear attacker against a Monte-Carlo Wiener restoration."""

import pytest
import torch

from privlens.attacks.wiener_bound import cross_spectrum, otf, wiener_mse, wiener_restore

N, C = 32, 3
GAINS = torch.tensor([1.0, 0.8, 0.6])
MEAN = torch.tensor([0.5, 0.4, 0.3])


def _kernel_otf(sigma: float) -> torch.Tensor:
    """Transfer of a circular Gaussian smoothing kernel (unit sum) on the N x N canvas."""
    r = torch.arange(N) - N // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return torch.fft.fft2(torch.fft.ifftshift(g / g.sum()).double())


def _fields(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Correlated 3-channel stationary fields: a shared smooth part plus independent texture."""
    shared = torch.randn(batch, 1, N, N, generator=generator, dtype=torch.float64)
    own = torch.randn(batch, C, N, N, generator=generator, dtype=torch.float64)
    smooth = torch.fft.ifft2(torch.fft.fft2(shared) * _kernel_otf(1.5)).real * 6.0
    texture = torch.fft.ifft2(torch.fft.fft2(own) * _kernel_otf(0.7)).real * 0.8
    return GAINS[None, :, None, None].double() * smooth + texture + MEAN[None, :, None, None].double()


def _analytic_spectrum() -> torch.Tensor:
    smooth = (_kernel_otf(1.5).abs() ** 2) * 36.0
    texture = (_kernel_otf(0.7).abs() ** 2) * 0.64
    g = GAINS.double()
    return smooth[..., None, None] * torch.outer(g, g) + texture[..., None, None] * torch.eye(C).double()


def _psf() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    psf = torch.rand(C, 7, 7, generator=generator, dtype=torch.float64) ** 3
    return psf / psf.sum(dim=(-2, -1), keepdim=True)


def test_closed_form_mse_matches_monte_carlo_restoration(one_torch_thread):
    generator = torch.Generator().manual_seed(0)
    sigma = 0.05
    transfer = otf(_psf(), (N, N))
    spectrum = _analytic_spectrum().to(torch.complex128)
    predicted = float(wiener_mse(transfer, spectrum, sigma**2))
    scenes = _fields(300, generator)
    blurred = torch.fft.ifft2(torch.fft.fft2(scenes) * transfer).real
    captures = blurred + sigma * torch.randn(blurred.shape, generator=generator, dtype=torch.float64)
    restored = wiener_restore(captures, transfer, spectrum, sigma**2, MEAN.double())
    measured = float((restored - scenes).square().mean())
    assert measured == pytest.approx(predicted, rel=0.02)
    # the bound is informative: far below the raw capture's error and above zero
    assert predicted < 0.5 * float((captures - scenes).square().mean())
    # more noise, more error; a sharper lens (identity PSF), less error
    assert float(wiener_mse(transfer, spectrum, (2 * sigma) ** 2)) > predicted
    delta = torch.zeros(C, 7, 7, dtype=torch.float64)
    delta[:, 3, 3] = 1
    assert float(wiener_mse(otf(delta, (N, N)), spectrum, sigma**2)) < predicted


def test_cross_spectrum_estimate_converges_to_the_true_one(one_torch_thread):
    scenes = _fields(400, torch.Generator().manual_seed(2))
    estimate = cross_spectrum(scenes, MEAN.double())
    truth = _analytic_spectrum()
    assert torch.allclose(estimate.real.sum(dim=(0, 1)), truth.sum(dim=(0, 1)), rtol=0.08)


def test_the_bound_has_a_gradient_in_the_psf(one_torch_thread):
    psf = _psf().clone().requires_grad_(True)
    spectrum = _analytic_spectrum().to(torch.complex128)
    wiener_mse(otf(psf, (N, N)), spectrum, 1e-3).backward()
    assert psf.grad is not None and torch.isfinite(psf.grad).all() and psf.grad.abs().sum() > 0


def test_cross_spectrum_in_chunks_equals_the_direct_sum():
    """Batches longer than one chunk (and not a multiple of it) give the one-pass average."""
    from privlens.attacks.wiener_bound import CROSS_SPECTRUM_CHUNK, cross_spectrum

    images = torch.rand(2 * CROSS_SPECTRUM_CHUNK + 3, 3, 8, 8, dtype=torch.float64)
    centred = images - images.mean(dim=(0, 2, 3))[None, :, None, None]
    spectra = torch.fft.fft2(centred).permute(0, 2, 3, 1)
    direct = (spectra[..., :, None] * spectra[..., None, :].conj()).mean(dim=0) / 64
    assert torch.allclose(cross_spectrum(images), direct, atol=1e-12)
