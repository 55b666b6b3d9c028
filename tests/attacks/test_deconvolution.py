"""Wiener and Richardson–Lucy against known answers."""

import pytest
import torch

from privlens.attacks.deconvolution import richardson_lucy, wiener_deconvolve
from privlens.data.samples import astronaut
from privlens.eval.quality import psnr
from privlens.optics import make_camera


@pytest.fixture(scope="module")
def scene() -> torch.Tensor:
    return astronaut(64)[None]


@pytest.fixture(scope="module")
def defocus_capture(scene):
    camera = make_camera("defocus", 64).eval()
    with torch.no_grad():
        capture = camera(scene)
    return capture.image, capture.psf


def test_wiener_with_true_psf_beats_wrong_psf(scene, defocus_capture):
    capture, psf = defocus_capture
    wrong = make_camera("prototype", 64).psf().detach()
    lambdas = torch.logspace(-6, -1, 6)
    right = max(float(psnr(r, scene).mean()) for r in wiener_deconvolve(capture, psf, lambdas))
    wrong_best = max(float(psnr(r, scene).mean()) for r in wiener_deconvolve(capture, wrong, lambdas))
    assert right > float(psnr(capture, scene)) + 0.5
    assert right > wrong_best + 1


def test_wiener_inverts_a_circular_blur_exactly():
    # Interior of a periodic scene blurred circularly: with lambda -> 0 Wiener is the inverse filter
    generator = torch.Generator().manual_seed(0)
    scene = torch.rand(1, 3, 32, 32, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    psf = torch.zeros(3, 5, 5, dtype=torch.float64)
    psf[:, 2, 2], psf[:, 1, 2], psf[:, 3, 2] = 0.6, 0.2, 0.2
    from privlens.optics.sensor import convolve

    blurred = convolve(scene, psf, "circular")
    restored = wiener_deconvolve(blurred, psf, 1e-12)
    # away from the replicated border the restoration is exact
    assert torch.allclose(restored[..., 6:-6, 6:-6], scene[..., 6:-6, 6:-6], atol=0.02)


def test_wiener_lambda_batch_equals_single_calls(scene, defocus_capture):
    capture, psf = defocus_capture
    lambdas = torch.tensor([1e-4, 1e-2])
    both = wiener_deconvolve(capture, psf, lambdas)
    assert torch.allclose(both[1], wiener_deconvolve(capture, psf, 1e-2), atol=1e-6)


def test_richardson_lucy_improves_and_snapshots_match(scene, defocus_capture):
    capture, psf = defocus_capture
    snapshots = richardson_lucy(capture, psf, 20, snapshots=[5, 20])
    assert float(psnr(snapshots[1], scene)) > float(psnr(capture, scene)) + 2
    assert torch.allclose(snapshots[0], richardson_lucy(capture, psf, 5), atol=1e-6)
    assert snapshots.min() >= 0 and snapshots.max() <= 1
    with pytest.raises(ValueError):
        richardson_lucy(capture, psf, 0)


def test_identity_psf_is_a_fixed_point(scene):
    psf = torch.zeros(3, 9, 9)
    psf[:, 4, 4] = 1
    assert torch.allclose(richardson_lucy(scene, psf, 3), scene, atol=1e-5)
    assert torch.allclose(wiener_deconvolve(scene, psf, 1e-9), scene, atol=1e-5)


def test_blur_operator_matches_the_camera_and_its_adjoint_is_exact():
    from privlens.attacks.deconvolution import blur_operator
    from privlens.optics.sensor import convolve

    generator = torch.Generator().manual_seed(1)
    psf = torch.rand(3, 16, 16, generator=generator, dtype=torch.float64)
    x = torch.rand(2, 3, 16, 16, generator=generator, dtype=torch.float64)
    r = torch.rand(2, 3, 16, 16, generator=generator, dtype=torch.float64)
    for mode in ("linear", "circular"):
        forward, adjoint = blur_operator(psf, (16, 16), mode)
        assert torch.allclose(forward(x), convolve(x, psf, mode))
        # <A x, r> == <x, A^T r>
        assert torch.allclose((forward(x) * r).sum(), (x * adjoint(r)).sum())
    with pytest.raises(ValueError):
        blur_operator(psf, (16, 16), "valid")


def test_tikhonov_cg_solves_the_regularised_normal_equations_of_the_exact_forward_model():
    """Against a dense direct solve of (A^T A + lambda) x = A^T y + lambda m on a 10 x 10 image,
    with A the camera's zero-padded (linear) convolution built column by column."""
    from privlens.attacks.deconvolution import blur_operator, tikhonov_cg

    generator = torch.Generator().manual_seed(4)
    psf = torch.rand(1, 5, 5, generator=generator, dtype=torch.float64)
    psf /= psf.sum()
    scene = 0.2 + 0.6 * torch.rand(1, 1, 10, 10, generator=generator, dtype=torch.float64)
    forward, _ = blur_operator(psf, (10, 10), "linear")
    capture = forward(scene) + 0.01 * torch.randn(scene.shape, generator=generator, dtype=torch.float64)
    basis = torch.eye(100, dtype=torch.float64).reshape(100, 1, 1, 10, 10)
    dense = torch.stack([forward(b).flatten() for b in basis], dim=1)  # [100, 100]
    lam = 0.05
    prior = capture.mean()
    rhs = dense.T @ capture.flatten() + lam * prior
    exact = torch.linalg.solve(dense.T @ dense + lam * torch.eye(100, dtype=torch.float64), rhs)
    solved = tikhonov_cg(capture, psf, lam, iterations=60)
    assert torch.allclose(solved.flatten(), exact.clamp(0, 1), atol=1e-6)
    assert (solved - scene).abs().mean() < (capture - scene).abs().mean()  # it deblurs
    few = tikhonov_cg(capture, psf, torch.tensor(lam, requires_grad=True), iterations=3)
    assert few.requires_grad  # differentiable in lambda
    with pytest.raises(ValueError):
        tikhonov_cg(capture, psf, lam, iterations=0)
