"""PSF physics against analytic references: Airy pattern, defocus equivalence, geometric blur."""

import dataclasses
import math

import pytest
import torch
from scipy.special import j1

from privlens.optics.config import CameraConfig
from privlens.optics.psf import (
    build_pupil_sampling,
    max_phase_step,
    psf_from_coefficients,
    sensor_coordinates_m,
)


def psf64(config: CameraConfig, coeffs=None) -> torch.Tensor:
    sampling = build_pupil_sampling(config, dtype=torch.float64)
    if coeffs is None:
        coeffs = torch.zeros(config.num_terms, dtype=torch.float64)
    return psf_from_coefficients(torch.as_tensor(coeffs, dtype=torch.float64), sampling)


def test_each_wavelength_sums_to_one():
    coeffs = torch.zeros(15)
    coeffs[3], coeffs[6] = 0.3, -0.2
    psf = psf_from_coefficients(coeffs, build_pupil_sampling(CameraConfig()))
    assert psf.shape == (3, 256, 256)
    assert torch.allclose(psf.sum(dim=(-2, -1)), torch.ones(3), atol=1e-5)
    assert (psf >= 0).all()


def test_paper_camera_first_dark_ring_matches_airy():
    # Sample the green PSF 20x finer than the sensor to locate its first zero.
    config = CameraConfig(pitch_m=3.713e-6 / 20, image_size=256)
    psf = psf64(config)[1]
    centre = config.image_size // 2
    profile = psf[centre, centre : centre + 80]
    first_zero = int(torch.argmin(profile[:70]))
    radius_um = first_zero * config.image_pitch_m * 1e6
    expected_um = 1.22 * 550e-9 * config.f_number * 1e6
    assert expected_um == pytest.approx(8.39, abs=0.01)
    assert radius_um == pytest.approx(expected_um, abs=0.2)
    assert expected_um / 3.713 == pytest.approx(2.26, abs=0.01)


def test_paper_camera_psf_matches_analytic_airy_profile():
    config = CameraConfig()
    psf = psf64(config)[1]
    centre = config.image_size // 2
    r = torch.arange(0, 6, dtype=torch.float64) * config.pitch_m
    v = math.pi * r / (550e-9 * config.f_number)
    airy = torch.ones_like(v)
    airy[1:] = (2 * torch.from_numpy(j1(v[1:].numpy())) / v[1:]) ** 2
    measured = psf[centre, centre : centre + 6] / psf[centre, centre]
    assert torch.allclose(measured, airy, atol=5e-3)
    # rotational symmetry of the open lens
    assert torch.allclose(psf, psf.T, atol=1e-12)


def test_object_distance_defocus_equals_noll4_defocus():
    # A scene at 1 m with focus at 5 m adds k r^2/2 (1/d - 1/d_f); the equivalent Noll-4 wavefront
    # is -(R^2/2)(1/d - 1/d_f)/(2 sqrt(3)) (piston is irrelevant).
    near = CameraConfig(object_distance_m=1.0, image_size=64, grid_size=256)
    vergence = 1 / 1.0 - 1 / 5.0
    beta4_um = -(near.aperture_radius_m**2 / 2) * vergence / (2 * math.sqrt(3)) * 1e6
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[3] = beta4_um
    from_distance = psf64(near)
    from_zernike = psf64(near.replace(object_distance_m=5.0), coeffs)
    assert torch.allclose(from_distance, from_zernike, atol=1e-6)
    assert not torch.allclose(from_distance, psf64(near.replace(object_distance_m=5.0)), atol=1e-4)


def test_strong_defocus_matches_geometric_blur_disc():
    # Geometric optics: W020 = 2 sqrt(3) beta4 gives a uniform disc of radius 2 W020 z / R.
    config = CameraConfig()
    beta4_um = 1.5
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[3] = beta4_um
    psf = psf64(config, coeffs)[1]
    radius_px = 2 * (2 * math.sqrt(3) * beta4_um * 1e-6) * config.sensor_distance_m
    radius_px /= config.aperture_radius_m * config.pitch_m
    coords = torch.arange(256, dtype=torch.float64) - 128
    rr = torch.sqrt(coords[:, None] ** 2 + coords[None] ** 2)
    order = torch.argsort(rr.flatten())
    cumulative = torch.cumsum(psf.flatten()[order], 0)
    r80 = rr.flatten()[order][int(torch.searchsorted(cumulative, torch.tensor(0.8, dtype=torch.float64)))]
    assert float(r80) == pytest.approx(math.sqrt(0.8) * radius_px, rel=0.06)


def test_binned_psf_is_the_pixel_integral_of_the_fine_psf():
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[4], coeffs[7] = 0.2, 0.15
    sampling = build_pupil_sampling(CameraConfig(image_size=64), dtype=torch.float64)
    assert sampling.binning == 4 and sampling.dft.shape[1] == 256
    coarse = psf_from_coefficients(coeffs, sampling)
    fine = psf_from_coefficients(coeffs, dataclasses.replace(sampling, binning=1))
    pooled = fine.reshape(3, 64, 4, 64, 4).sum(dim=(2, 4))
    assert torch.allclose(coarse, pooled / pooled.sum(dim=(-2, -1), keepdim=True), atol=1e-10)


def test_optical_axis_maps_to_centre_pixel():
    for size in (256, 64, 63):
        coords = sensor_coordinates_m(CameraConfig(image_size=size))
        binning = len(coords) // size
        centre_group = coords[(size // 2) * binning : (size // 2 + 1) * binning]
        assert abs(float(centre_group.mean())) < 1e-12


def test_tilt_shifts_the_psf():
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[1] = 0.5  # Noll 2, tip along x
    psf = psf64(CameraConfig(), coeffs)[1]
    centre = 128
    column = int(psf.sum(0).argmax())
    assert column != centre
    # a tilt is a pure shift: the peak value stays that of the Airy pattern (within sampling)
    assert float(psf.max()) == pytest.approx(float(psf64(CameraConfig())[1].max()), rel=0.25)


def test_float32_matches_float64():
    coeffs = torch.zeros(15)
    coeffs[3], coeffs[8] = 0.4, -0.3
    single = psf_from_coefficients(coeffs, build_pupil_sampling(CameraConfig()))
    double = psf64(CameraConfig(), coeffs.double())
    assert torch.allclose(single.double(), double, atol=2e-6)


def test_phase_sampling_report():
    sampling = build_pupil_sampling(CameraConfig())
    small = torch.zeros(15)
    small[3] = 0.5
    assert max_phase_step(small, sampling) < math.pi
    large = torch.zeros(15)
    large[3] = 40.0
    assert max_phase_step(large, sampling) > math.pi
