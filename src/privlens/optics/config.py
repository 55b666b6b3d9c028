"""Camera settings: one frozen dataclass, stored verbatim in every lens file.

Units are SI (metres) unless the field name says otherwise; Zernike coefficients are in
micrometres of RMS wavefront (optical path difference), Noll order, see :mod:`privlens.optics.zernike`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

PAPER_F_NUMBER = 12.5
"""Working f-number of the paper's simulated camera (50 mm / 4 mm aperture)."""

ConvolutionMode = Literal["linear", "circular"]
PupilSamplingMode = Literal["adaptive", "fixed"]


@dataclass(frozen=True)
class CameraConfig:
    """Physical and numerical settings of the simulated privacy camera.

    The defaults are the simulation constants of Lopez et al. (CVPR 2024): a 2 mm-radius circular
    aperture sampled inside an 8 mm lens-plane window by a 256-point grid, 50 mm lens-sensor
    distance, focused at 5 m, R/G/B wavelengths 640/550/440 nm and a 3.713 um sensor pitch.

    Attributes:
        image_size: pixels per side of the scene and of the capture. The sensor's field of view is
            always ``grid_size * pitch_m``; an image smaller than ``grid_size`` is the same field of
            view with coarser pixels (the PSF is computed at the fine pitch and binned).
        grid_size: samples per side of the paper's simulation grid (lens window and sensor).
        wavelengths_m: one wavelength per colour channel, in channel order (R, G, B).
        aperture_radius_m: radius of the circular pupil.
        lens_window_m: side of the lens-plane window sampled by ``grid_size`` points.
        sensor_distance_m: lens to sensor distance.
        focus_distance_m: object distance the lens is focused on.
        object_distance_m: distance of the scene (a plane); equal to the focus distance by default.
        pitch_m: sensor pixel pitch.
        num_terms: Zernike terms ``j = 1..num_terms`` (Noll) in the phase mask.
        frozen_terms: Noll indices whose coefficient never trains (piston, tip, tilt by default).
        convolution: ``"linear"`` (zero-padded FFT, no wrap-around) or ``"circular"`` (periodic).
        noise_sigma: legacy: standard deviation of additive Gaussian noise in image units [0, 1],
            added by ``forward``/``image`` (prefer the physical sensor model below).
        noise_in_eval: legacy: also add ``noise_sigma`` in ``eval()`` mode (off by default).
        full_scale_e: photo-electrons collected at image value 1 by one sensor pixel of pitch
            ``pitch_m`` (exposure, light and ISO folded in). Larger image pixels (small images,
            ``lowres_size``) collect proportionally more. Default 4000 e-: see
            :mod:`privlens.optics.noise` for why this is a realistic indoor scene.
        read_noise_e: read noise per pixel, electrons RMS (default 2.5 e-).
        bit_depth: ADC bits of the stored capture (default 10).
        sensor_noise: ``forward`` applies the sensor model (shot + read noise, clipping and
            quantisation; differentiable in training, exact Poisson and hard rounding otherwise).
            Off by default; ``Camera.capture`` applies it on request whatever this says.
        pupil_sampling: ``"adaptive"`` (default) samples the pupil finely enough for the current
            coefficients at every PSF evaluation; ``"fixed"`` keeps the paper's 31.25 um sampling
            and warns (raises in training) when the mask aliases.
        max_pupil_samples: most pupil samples across the aperture that adaptive sampling may use
            (cost grows as its square); a stronger mask raises ``PupilSamplingError``.
        gain: linear sensor response ``C(v) = gain * v``.
        clip: clip the capture to [0, 1] after noise or gain > 1, as a saturating sensor does
            (without either the capture already lies in [0, 1]).
        lowres_size: if set, the sensor integrates over ``lowres_size x lowres_size`` large pixels
            (area downsampling) and the capture is shown back at ``image_size`` (nearest).
    """

    image_size: int = 256
    grid_size: int = 256
    wavelengths_m: tuple[float, ...] = (640e-9, 550e-9, 440e-9)
    aperture_radius_m: float = 2e-3
    lens_window_m: float = 8e-3
    sensor_distance_m: float = 50e-3
    focus_distance_m: float = 5.0
    object_distance_m: float = 5.0
    pitch_m: float = 3.713e-6
    num_terms: int = 15
    frozen_terms: tuple[int, ...] = (1, 2, 3)
    convolution: ConvolutionMode = "linear"
    noise_sigma: float = 0.0
    noise_in_eval: bool = False
    gain: float = 1.0
    clip: bool = True
    lowres_size: int | None = None
    full_scale_e: float = 4000.0
    read_noise_e: float = 2.5
    bit_depth: int = 10
    sensor_noise: bool = False
    pupil_sampling: PupilSamplingMode = "adaptive"
    max_pupil_samples: int = 512

    def __post_init__(self) -> None:
        object.__setattr__(self, "wavelengths_m", tuple(float(w) for w in self.wavelengths_m))
        object.__setattr__(self, "frozen_terms", tuple(int(j) for j in self.frozen_terms))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that is not physical or not supported."""
        for name in ("image_size", "grid_size", "num_terms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"camera setting {name} must be a positive integer, got {value!r}")
        positive = (
            "aperture_radius_m",
            "lens_window_m",
            "sensor_distance_m",
            "focus_distance_m",
            "object_distance_m",
            "pitch_m",
            "gain",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"camera setting {name} must be a positive number, got {value!r}")
        if not self.wavelengths_m or any(not 100e-9 < w < 20e-6 for w in self.wavelengths_m):
            raise ValueError(
                f"camera setting wavelengths_m must be wavelengths in metres, got {self.wavelengths_m}"
            )
        if self.noise_sigma < 0 or not math.isfinite(self.noise_sigma):
            raise ValueError(f"camera setting noise_sigma must be >= 0, got {self.noise_sigma!r}")
        if not isinstance(self.full_scale_e, (int, float)) or not 0 < self.full_scale_e < math.inf:
            raise ValueError(
                f"camera setting full_scale_e must be a positive number, got {self.full_scale_e!r}"
            )
        if not isinstance(self.read_noise_e, (int, float)) or not 0 <= self.read_noise_e < math.inf:
            raise ValueError(f"camera setting read_noise_e must be >= 0, got {self.read_noise_e!r}")
        if (
            isinstance(self.bit_depth, bool)
            or not isinstance(self.bit_depth, int)
            or not 1 <= self.bit_depth <= 24
        ):
            raise ValueError(f"camera setting bit_depth must be an integer in 1..24, got {self.bit_depth!r}")
        if not isinstance(self.sensor_noise, bool):
            raise ValueError(f"camera setting sensor_noise must be true or false, got {self.sensor_noise!r}")
        if self.pupil_sampling not in ("adaptive", "fixed"):
            raise ValueError(
                f"camera setting pupil_sampling must be 'adaptive' or 'fixed', got {self.pupil_sampling!r}"
            )
        if (
            isinstance(self.max_pupil_samples, bool)
            or not isinstance(self.max_pupil_samples, int)
            or self.max_pupil_samples < 8
        ):
            raise ValueError(
                f"camera setting max_pupil_samples must be an integer >= 8, got {self.max_pupil_samples!r}"
            )
        if self.convolution not in ("linear", "circular"):
            raise ValueError(
                f"camera setting convolution must be 'linear' or 'circular', got {self.convolution!r}"
            )
        if 2 * self.aperture_radius_m > self.lens_window_m:
            raise ValueError(
                "camera setting aperture_radius_m: the aperture (diameter "
                f"{2 * self.aperture_radius_m} m) does not fit the lens window {self.lens_window_m} m"
            )
        bad = [j for j in self.frozen_terms if not 1 <= j <= self.num_terms]
        if bad:
            raise ValueError(
                f"camera setting frozen_terms: Noll indices {bad} are outside 1..{self.num_terms}"
            )
        if self.lowres_size is not None and not 1 <= self.lowres_size <= self.image_size:
            raise ValueError(
                f"camera setting lowres_size must lie in 1..image_size={self.image_size}, "
                f"got {self.lowres_size!r}"
            )

    @property
    def f_number(self) -> float:
        """Working f-number ``sensor_distance / aperture diameter`` (12.5 for the paper camera)."""
        return self.sensor_distance_m / (2 * self.aperture_radius_m)

    @property
    def exposure_factor(self) -> float:
        """Exposure (time x light) this aperture needs, relative to the paper's f/12.5 camera, for
        the same photo-electrons per pixel, i.e. for ``full_scale_e`` to stay what it says:
        ``(f_number / 12.5) ** 2``. A stop of 0.07 mm radius at 50 mm (f/357) needs 816 x."""
        return (self.f_number / PAPER_F_NUMBER) ** 2

    @property
    def image_pitch_m(self) -> float:
        """Size of one image pixel on the sensor: the field of view divided by ``image_size``."""
        return self.grid_size * self.pitch_m / self.image_size

    def replace(self, **changes: Any) -> CameraConfig:
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["wavelengths_m"] = list(self.wavelengths_m)
        data["frozen_terms"] = list(self.frozen_terms)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraConfig:
        """Build from a mapping; unknown keys are an error that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown camera setting(s): {', '.join(unknown)}")
        values = dict(data)
        for name in ("wavelengths_m", "frozen_terms"):
            if name in values:
                values[name] = tuple(values[name])
        try:
            return cls(**values)
        except TypeError as error:  # pragma: no cover - dataclass signature errors
            raise ValueError(f"invalid camera settings: {error}") from error
