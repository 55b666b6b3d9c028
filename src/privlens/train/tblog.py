"""TensorBoard logging of Stage I: scalars, the coefficients beta, PSFs and image grids.

Only the main process writes (``writer`` is ``None`` elsewhere). Tags:

* ``loss/total``, ``loss/distortion`` (``||x - y||^2``), ``loss/psf`` (``||H - H_f||_2``),
  ``loss/heatmap`` (``||U(y) - U*(x)||_1``), ``loss/optics``; ``grad/beta_norm``, ``grad/net_norm``;
* ``beta/Z<j>``: every Noll coefficient (um);
* ``val/heatmap_l1``, ``val/nme``, ``val/distortion``;
* images ``psf`` (R, G, B PSFs, each scaled to its maximum, square-root for contrast) and
  ``samples`` (rows: scene, capture, U(y) summed over landmarks, U*(x) summed over landmarks).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F


def open_writer(folder: Path, enabled: bool, purge_step: int | None = None):
    """A ``SummaryWriter`` on ``folder`` when ``enabled``, else ``None``.

    ``purge_step``: the step a run (re)starts from. TensorBoard then hides the events of earlier
    event files logged at or after that step (the part of an interrupted run that is redone), so
    a resumed run shows each step once.
    """
    if not enabled:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


def psf_image(psf: torch.Tensor) -> torch.Tensor:
    """``[C, N, N]`` PSFs -> ``[3, N, C*N]`` grey tiles side by side, sqrt-scaled to their peaks."""
    tiles = [(p / p.max().clamp_min(1e-12)).sqrt() for p in psf.detach().float().cpu()]
    row = torch.cat(tiles, dim=-1)
    return row.unsqueeze(0).expand(3, -1, -1).clamp(0, 1)


def sample_grid(
    scene: torch.Tensor, capture: torch.Tensor, prediction: torch.Tensor, target: torch.Tensor, count: int = 4
) -> torch.Tensor:
    """A ``[3, 4H, count*W]`` grid: scenes, captures, predicted and true landmark heatmaps."""
    from torchvision.utils import make_grid

    n = min(count, scene.shape[0])
    size = scene.shape[-2:]

    def heat(maps: torch.Tensor) -> torch.Tensor:
        summed = maps[:n, :68].detach().float().clamp(0, 1).amax(dim=1, keepdim=True)
        return F.interpolate(summed, size=size, mode="nearest").expand(-1, 3, -1, -1)

    rows = [scene[:n].detach().float(), capture[:n].detach().float(), heat(prediction), heat(target)]
    return make_grid(torch.cat([r.cpu().clamp(0, 1) for r in rows]), nrow=n, padding=1)
