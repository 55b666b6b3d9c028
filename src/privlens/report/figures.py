"""Matplotlib figures of lenses and captures (written as PNG, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from privlens.optics.camera import Camera  # noqa: E402

CHANNEL_NAMES = ("R", "G", "B")


def _save(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def psf_support_radius(psf: torch.Tensor, energy: float = 0.97, margin: float = 1.5) -> int:
    """Half-width (px) of the centred square holding ``energy`` of every PSF, with a margin."""
    centre = psf.shape[-1] // 2
    for radius in range(1, psf.shape[-1]):
        window = psf[
            ...,
            max(0, centre - radius) : centre + radius + 1,
            max(0, centre - radius) : centre + radius + 1,
        ]
        if bool((window.sum(dim=(-2, -1)) >= energy).all()):
            return max(8, int(radius * margin))
    return psf.shape[-1] // 2


def psf_light_radius(
    psf: torch.Tensor, fraction: float = 0.01, margin: float = 1.25, minimum: int = 6
) -> int:
    """Half-width (px) of the centred square around every pixel brighter than ``fraction`` of its
    channel's peak, times ``margin``: the crop that shows where the light is (faint tails that
    carry energy but cannot be seen are left out; the figure states the share shown)."""
    centre = psf.shape[-1] // 2
    peaks = psf.flatten(-2).amax(-1)[..., None, None]
    rows, cols = torch.nonzero((psf >= fraction * peaks).any(dim=0), as_tuple=True)
    if rows.numel() == 0:
        return minimum
    reach = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
    return int(min(psf.shape[-1] // 2, max(minimum, round(reach * margin))))


def _pixel_grid_panel(axis, figure, camera: Camera) -> None:
    """What a point of light becomes on a large-pixel sensor, with the large pixels' grid drawn."""
    config = camera.config
    size, cells = config.image_size, config.lowres_size
    step = size / cells
    point = torch.zeros(1, 3, size, size)
    point[..., size // 2, size // 2] = 1.0
    response = camera.eval()(point).image[0, 1]
    pitch_um = config.image_pitch_m * 1e6
    reach = min(size // 2, int(round(2.5 * step)))
    centre = size // 2
    window = slice(centre - reach, centre + reach + 1)
    low = (window.start - centre - 0.5) * pitch_um
    high = (window.stop - centre - 0.5) * pitch_um
    image = axis.imshow(response[window, window].numpy(), cmap="inferno", extent=(low, high, high, low))
    first = np.ceil((window.start - 0.5) / step) * step
    for edge in np.arange(first, window.stop, step):
        position = (edge - centre - 0.5) * pitch_um
        axis.axvline(position, color="cyan", linewidth=0.8)
        axis.axhline(position, color="cyan", linewidth=0.8)
    axis.set_title(f"point on the {cells} x {cells} sensor\n(one large pixel = {step * pitch_um:.0f} um)")
    axis.set_xlabel("sensor x (um)")
    figure.colorbar(image, ax=axis, fraction=0.046)


@torch.no_grad()
def plot_lens(camera: Camera, path: str | Path, log_scale: bool = False, title: str = "") -> Path:
    """Phase mask (wavefront, um) and the PSF of each wavelength, side by side.

    PSFs are shown as fractions of their total energy, cropped to where the light is
    (:func:`psf_light_radius`; each title gives the share of the light inside the crop), with the
    image's pixel pitch in um on the axes; ``log_scale`` shows log10 of the PSF. A camera with a
    large-pixel sensor (``lowres_size``) gets one more panel: a point of light as that sensor
    records it, with the large pixels' grid.
    """
    config = camera.config
    wavefront = camera.wavefront_um().cpu().numpy()
    aperture = camera.aperture_mask().cpu().numpy() > 0
    psf = camera.psf().cpu()
    lowres = bool(config.lowres_size)
    panels = 1 + psf.shape[0] + int(lowres)
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4), layout="constrained")
    radius_mm = config.aperture_radius_m * 1e3
    shown = wavefront.copy()
    shown[~aperture] = float("nan")
    limit = max(float(abs(wavefront).max()), 1e-3)
    image = axes[0].imshow(
        shown,
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        extent=(-radius_mm, radius_mm, radius_mm, -radius_mm),
    )
    axes[0].set_title("phase mask (wavefront, um)")
    axes[0].set_xlabel("pupil x (mm)")
    figure.colorbar(image, ax=axes[0], fraction=0.046)
    pitch_um = config.image_pitch_m * 1e6
    centre = psf.shape[-1] // 2
    half_px = psf_light_radius(psf)
    window = slice(max(0, centre - half_px), centre + half_px + 1)
    extent = (
        (window.start - centre - 0.5) * pitch_um,
        (min(psf.shape[-1], window.stop) - centre - 0.5) * pitch_um,
    )
    psf_axes = axes[1 : 1 + psf.shape[0]]
    for axis, channel, wavelength in zip(psf_axes, range(psf.shape[0]), config.wavelengths_m, strict=False):
        data = psf[channel, window, window]
        share = float(data.sum() / psf[channel].sum().clamp_min(1e-12))
        if log_scale:
            data = torch.log10(data.clamp_min(1e-12))
        image = axis.imshow(data.numpy(), cmap="inferno", extent=(extent[0], extent[1], extent[1], extent[0]))
        name = CHANNEL_NAMES[channel] if channel < 3 else str(channel)
        axis.set_title(
            f"PSF {name} {wavelength * 1e9:.0f} nm"
            + (" (log10)" if log_scale else "")
            + f"\n{share:.0%} of the light shown"
        )
        axis.set_xlabel("sensor x (um)")
        figure.colorbar(image, ax=axis, fraction=0.046)
    if lowres:
        _pixel_grid_panel(axes[-1], figure, camera)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def image_grid(
    columns: dict[str, torch.Tensor],
    path: str | Path,
    title: str = "",
    captions: dict[str, str] | None = None,
) -> Path:
    """One row of labelled images (``[3, H, W]`` in [0, 1]); optional caption under each."""
    figure, axes = plt.subplots(1, len(columns), figsize=(3 * len(columns), 3.4), squeeze=False)
    for axis, (name, image) in zip(axes[0], columns.items(), strict=True):
        axis.imshow(image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
        axis.set_title(name)
        axis.set_xticks([])
        axis.set_yticks([])
        if captions and name in captions:
            axis.set_xlabel(captions[name], fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def image_table(
    rows: list[dict[str, torch.Tensor]],
    path: str | Path,
    captions: list[dict[str, str]] | None = None,
    title: str = "",
) -> Path:
    """A grid: one row per example, one column per key of ``rows[0]`` (images ``[3, H, W]``).

    ``captions[i][column]`` is printed under that image (e.g. PSNR and identity distance).
    """
    columns = list(rows[0])
    figure, axes = plt.subplots(
        len(rows), len(columns), figsize=(2.3 * len(columns), 2.6 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c, name in enumerate(columns):
            axis = axes[r][c]
            axis.imshow(row[name].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(name, fontsize=10)
            if captions and name in captions[r]:
                axis.set_xlabel(captions[r][name], fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)
