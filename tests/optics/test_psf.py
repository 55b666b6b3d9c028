"""PSF physics against analytic and converged references: Airy pattern, defocus, geometric blur,
adaptive pupil sampling (a mask known to alias) and pixel-area integration."""

import math

import pytest
import torch
from scipy.special import j1

from privlens.optics import Camera
from privlens.optics.config import CameraConfig
from privlens.optics.presets import prototype_coefficients
from privlens.optics.psf import (
    PupilSamplingError,
    build_pupil_sampling,
    max_phase_step,
    psf_from_coefficients,
    pupil_phases,
    required_fft_size,
    slope_basis,
)


def psf64(config: CameraConfig, coeffs=None, fft_size=None) -> torch.Tensor:
    sampling = build_pupil_sampling(config, dtype=torch.float64, fft_size=fft_size)
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


def airy(r: torch.Tensor, f_number: float, wavelength_m: float = 550e-9) -> torch.Tensor:
    """Analytic Airy intensity (peak 1) at radius ``r`` metres on the sensor."""
    v = math.pi * r / (wavelength_m * f_number)
    out = torch.ones_like(v)
    nz = v > 1e-9
    out[nz] = (2 * torch.from_numpy(j1(v[nz].numpy())) / v[nz]) ** 2
    return out


def pixel_integrated_airy_row(config: CameraConfig, count: int) -> torch.Tensor:
    """The green Airy pattern integrated over the pixel model (scene square * sensor square: a
    triangle of base 2 pixels per axis) by a fine 2-D quadrature, on ``count`` pixels from the
    centre along a row, normalised to the centre pixel."""
    pitch = config.image_pitch_m
    fine = torch.linspace(-1, 1, 81, dtype=torch.float64)
    weight = (1 - fine.abs())[:, None] * (1 - fine.abs())[None]
    values = []
    for i in range(count):
        x, y = (i + fine)[:, None] * pitch, fine[None] * pitch
        values.append(float((airy(torch.sqrt(x**2 + y**2), config.f_number) * weight).sum()))
    return torch.tensor(values, dtype=torch.float64) / values[0]


def test_open_lens_psf_is_the_pixel_integrated_airy_pattern():
    config = CameraConfig()
    psf = psf64(config)[1]
    centre = config.image_size // 2
    measured = psf[centre, centre : centre + 6] / psf[centre, centre]
    assert torch.allclose(measured, pixel_integrated_airy_row(config, 6), atol=6e-3)
    # a point-sampled Airy pattern differs clearly (its second sample is 0.46 of the peak)
    point = float(airy(torch.tensor([config.pitch_m], dtype=torch.float64), config.f_number)[0])
    assert abs(float(measured[1]) - point) > 0.05
    assert torch.allclose(psf, psf.T, atol=1e-12)  # rotational symmetry of the open lens


@pytest.mark.parametrize(("image_size", "radius_m"), [(256, 0.25e-3), (64, 0.1e-3), (64, 0.05e-3)])
def test_stopped_down_aperture_psf_is_the_wider_airy_pattern(image_size, radius_m):
    # An aperture stop (f/100 to f/500) is still the pixel-integrated Airy pattern of its own
    # f-number, out past its first dark ring; the default 2 mm pupil's pattern is far narrower.
    config = CameraConfig(image_size=image_size, aperture_radius_m=radius_m)
    psf = psf64(config)[1]
    centre = config.image_size // 2
    measured = psf[centre, centre : centre + 16] / psf[centre, centre]
    assert torch.allclose(measured, pixel_integrated_airy_row(config, 16), atol=3e-3)
    wide_open = psf64(config.replace(aperture_radius_m=2e-3))[1]
    assert float(wide_open[centre, centre + 3] / wide_open[centre, centre]) < float(measured[3]) - 0.1


def test_object_distance_defocus_equals_noll4_defocus():
    # A scene at 1 m with focus at 5 m adds k r^2/2 (1/d - 1/d_f); the equivalent Noll-4 wavefront
    # is -(R^2/2)(1/d - 1/d_f)/(2 sqrt(3)) (piston is irrelevant).
    near = CameraConfig(object_distance_m=1.0, image_size=64, grid_size=256)
    vergence = 1 / 1.0 - 1 / 5.0
    beta4_um = -(near.aperture_radius_m**2 / 2) * vergence / (2 * math.sqrt(3)) * 1e6
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[3] = beta4_um
    from_distance = psf64(near, fft_size=640)
    from_zernike = psf64(near.replace(object_distance_m=5.0), coeffs, fft_size=640)
    assert torch.allclose(from_distance, from_zernike, atol=1e-6)
    assert not torch.allclose(from_distance, psf64(near.replace(object_distance_m=5.0)), atol=1e-4)


def test_strong_defocus_matches_geometric_blur_disc():
    # Geometric optics: W020 = 2 sqrt(3) beta4 gives a uniform disc of radius 2 W020 z / R.
    config = CameraConfig()
    beta4_um = 1.5
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[3] = beta4_um
    camera = Camera(config, coeffs, psf_dtype=torch.float64)
    psf = camera.psf().detach()[1]
    radius_px = 2 * (2 * math.sqrt(3) * beta4_um * 1e-6) * config.sensor_distance_m
    radius_px /= config.aperture_radius_m * config.pitch_m
    coords = torch.arange(256, dtype=torch.float64) - 128
    rr = torch.sqrt(coords[:, None] ** 2 + coords[None] ** 2)
    order = torch.argsort(rr.flatten())
    cumulative = torch.cumsum(psf.flatten()[order], 0)
    r80 = rr.flatten()[order][int(torch.searchsorted(cumulative, torch.tensor(0.8, dtype=torch.float64)))]
    assert float(r80) == pytest.approx(math.sqrt(0.8) * radius_px, rel=0.06)


def test_optical_axis_maps_to_centre_pixel():
    for size in (256, 64, 63):
        psf = psf64(CameraConfig(image_size=size))
        for channel in psf:
            assert divmod(int(channel.argmax()), size) == (size // 2, size // 2)


def test_tilt_shifts_the_psf():
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[1] = 0.5  # Noll 2, tip along x
    psf = psf64(CameraConfig(), coeffs, fft_size=640)[1]
    assert int(psf.sum(0).argmax()) != 128
    # a tilt is a pure shift: the peak value stays that of the open lens
    assert float(psf.max()) == pytest.approx(float(psf64(CameraConfig())[1].max()), rel=0.25)


def test_float32_matches_float64():
    coeffs = torch.zeros(15)
    coeffs[3], coeffs[8] = 0.4, -0.3
    single = psf_from_coefficients(coeffs, build_pupil_sampling(CameraConfig()))
    double = psf64(CameraConfig(), coeffs.double())
    assert torch.allclose(single.double(), double, atol=2e-6)


def test_phase_step_sign_and_value():
    # the object's defocus phase and the mask's phase add with the PSF's own signs: a Noll-4 mask
    # that cancels the object defocus gives a flat pupil (step 0); the wrong sign would double it
    config = CameraConfig(object_distance_m=1.0)
    beta4_um = -(config.aperture_radius_m**2 / 2) * (1 / 1.0 - 1 / 5.0) / (2 * math.sqrt(3)) * 1e6
    coeffs = torch.zeros(15, dtype=torch.float64)
    coeffs[3] = -beta4_um
    sampling = build_pupil_sampling(config, dtype=torch.float64)
    assert max_phase_step(coeffs, sampling) < 1e-6
    assert max_phase_step(-coeffs, sampling) > 1.0
    # the paper's pupil pitch (31.25 um, 130 blue samples at FFT 384) for the prototype lens:
    # the documented 4.27 rad per sample, above pi
    paper = build_pupil_sampling(CameraConfig(), dtype=torch.float64, fft_size=384)
    assert max_phase_step(prototype_coefficients().double(), paper) == pytest.approx(4.27, abs=0.05)
    assert len(pupil_phases(coeffs, sampling)) == 3


@pytest.fixture(scope="module")
def prototype_reference():
    """The prototype lens with a 2x finer pupil sampling than needed (L1 1e-3 from 4x finer)."""
    config = CameraConfig()
    coeffs = prototype_coefficients().double()
    return config, coeffs, psf64(config, coeffs, fft_size=1152)


def test_adaptive_sampling_matches_a_converged_reference(prototype_reference):
    config, coeffs, reference = prototype_reference
    needed = required_fft_size(coeffs, config, slope_basis(config))
    assert needed > 384  # the prototype needs more than the open lens
    adaptive = Camera(config, coeffs, psf_dtype=torch.float64).psf().detach()
    assert (adaptive - reference).abs().sum(dim=(-2, -1)).max() < 0.012
    # the same lens at the open lens's sampling aliases: off by L1 > 0.1 in every channel
    aliased = psf64(config, coeffs, fft_size=384)
    assert (aliased - reference).abs().sum(dim=(-2, -1)).min() > 0.1


def test_fixed_sampling_on_an_aliasing_mask_warns_or_refuses():
    config = CameraConfig(image_size=64, pupil_sampling="fixed")
    camera = Camera(config, prototype_coefficients()).eval()
    with pytest.warns(RuntimeWarning, match="aliases"):
        camera.psf()
    with pytest.raises(PupilSamplingError, match="aliases"):
        camera.train().psf()
    report = Camera(config.replace(pupil_sampling="adaptive"), prototype_coefficients()).sampling_report()
    assert report.alias_free and report.used == report.required > 384
    open_lens = Camera(config).train()
    assert open_lens.check_sampling(strict=True).alias_free


def test_a_mask_beyond_the_sampling_cap_is_refused():
    camera = Camera(CameraConfig(image_size=64, max_pupil_samples=160), prototype_coefficients(15, 1.0))
    with pytest.raises(PupilSamplingError, match="max_pupil_samples"):
        camera.psf()
    assert not camera.simulable()


def test_simulable_is_the_cap_test_of_check_sampling():
    """Camera.simulable (checked every Stage I step) says True exactly where check_sampling does
    not refuse the mask for the cap, on masks on both sides of it."""
    camera = Camera(CameraConfig(image_size=64))
    generator = torch.Generator().manual_seed(3)
    verdicts = []
    for scale in (0.5, 2.0, 4.0, 8.0):
        for _ in range(3):
            coeffs = torch.zeros(15)
            coeffs[3:] = scale * torch.randn(12, generator=generator, dtype=torch.float64).float()
            try:
                camera.check_sampling(coeffs, strict=False)
                refused = False
            except PupilSamplingError:
                refused = True
            assert camera.simulable(coeffs) is not refused, scale
            verdicts.append(refused)
    assert any(verdicts) and not all(verdicts)  # both sides of the cap were tried


def _brute_force_pixel_psf(config, coeffs, sampling, per_pixel):
    """Fine point samples (pitch P / q) of the same pupil's intensity, weighted by the triangle."""
    from privlens.optics.psf import pupil_phases

    size, pitch = config.image_size, config.image_pitch_m
    centres = (torch.arange(size, dtype=torch.float64) - size // 2) * pitch
    j = torch.arange(-(size // 2) * per_pixel - per_pixel, (size - 1 - size // 2) * per_pixel + per_pixel + 1)
    u = j.double() * pitch / per_pixel
    weights = (1 - (u[None] - centres[:, None]).abs() / pitch).clamp_min(0)
    out = []
    for c, (phase, aperture) in enumerate(
        zip(pupil_phases(coeffs, sampling), sampling.apertures, strict=True)
    ):
        n = aperture.shape[-1]
        x = (torch.arange(n, dtype=torch.float64) - n / 2 + 0.5) * sampling.pupil_pitches_m[c]
        arg = -2 * math.pi * torch.outer(u, x) / (config.wavelengths_m[c] * config.sensor_distance_m)
        matrix = torch.polar(torch.ones_like(arg), arg)
        field = matrix @ torch.polar(aperture, phase) @ matrix.T
        intensity = field.real**2 + field.imag**2
        kernel = weights @ intensity @ weights.T
        out.append(kernel / kernel.sum())
    return torch.stack(out)


def test_pixel_integration_matches_brute_force_quadrature():
    # 64 px, prototype lens: our exact Fourier-domain triangle against trapezoid quadrature at
    # 4 and 8 samples per pixel, Richardson-extrapolated (the quadrature error falls as 1/q^2)
    config = CameraConfig(image_size=64)
    coeffs = prototype_coefficients().double()
    sampling = build_pupil_sampling(
        config, torch.float64, required_fft_size(coeffs, config, slope_basis(config))
    )
    ours = psf_from_coefficients(coeffs, sampling)
    coarse = _brute_force_pixel_psf(config, coeffs, sampling, 4)
    fine = _brute_force_pixel_psf(config, coeffs, sampling, 8)
    extrapolated = (4 * fine - coarse) / 3
    assert (ours - extrapolated).abs().sum(dim=(-2, -1)).max() < 2e-3
    assert (ours - coarse).abs().sum(dim=(-2, -1)).max() > 5e-3  # the check can tell


def test_capture_is_the_same_at_every_image_size():
    # a 64 px capture of a scene constant over 4x4 blocks equals the 4x-binned 256 px capture
    generator = torch.Generator().manual_seed(3)
    small_scene = torch.rand(1, 3, 64, 64, generator=generator)
    big_scene = small_scene.repeat_interleave(4, -2).repeat_interleave(4, -1)
    for lens in (torch.zeros(15), prototype_coefficients()):
        small = Camera(CameraConfig(image_size=64), lens).eval()(small_scene).image.detach()
        big = Camera(CameraConfig(image_size=256), lens).eval()(big_scene).image.detach()
        binned = torch.nn.functional.avg_pool2d(big, 4)
        rel_rms = float((small - binned).square().mean().sqrt() / binned.square().mean().sqrt())
        assert rel_rms < 0.005
