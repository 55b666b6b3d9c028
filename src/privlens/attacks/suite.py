"""Run every attack against one lens and measure what each recovers.

Protocol. The faces are split into an *attacker* set and an *evaluation* set (disjoint). The
attacker owns a copy of the camera: they make captures of their own faces, choose the Wiener
regularisation and the Richardson–Lucy iteration count that maximise mean PSNR on them (the
strongest such attacker, not a fixed guess), and train the learned inversion on them. Every
attack is then applied to the captures of the evaluation faces. Captures are quantised to 8 bits
(what a stolen image file holds) unless ``quantise=False``.

Attacks per lens: ``none`` (the raw capture), ``wiener``, ``richardson-lucy`` and ``inversion``;
for a large-pixel (``lowres``) sensor, ``bicubic`` upsampling of the large-pixel reading and
``inversion`` (deconvolving a large-pixel reading by the lens PSF is meaningless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from privlens.attacks.deconvolution import richardson_lucy, wiener_deconvolve
from privlens.attacks.inversion import InversionTraining, invert, quantise_8bit, train_inversion
from privlens.eval.quality import psnr
from privlens.eval.restoration import ssim
from privlens.optics.camera import Camera

WIENER_LAMBDAS = tuple(float(v) for v in torch.logspace(-7, 0, 15))
RL_ITERATIONS = (1, 2, 5, 10, 20, 50, 100, 200)

IdentityDistance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(originals, recovered) -> [B]`` identity distances (NaN where no embedding could be made)."""

SAME_PERSON_THRESHOLD = 0.6
"""dlib's face_recognition threshold: embeddings closer than this are the same person."""


@dataclass
class AttackSettings:
    """What the attacker tries. Defaults: 15 lambdas in [1e-7, 1], RL up to 200 iterations."""

    wiener_lambdas: tuple[float, ...] = WIENER_LAMBDAS
    rl_iterations: tuple[int, ...] = RL_ITERATIONS
    inversion: InversionTraining | None = field(default_factory=InversionTraining)
    quantise: bool = True


@dataclass
class Choice:
    """A parameter the attacker picked, with the held-out PSNR of every candidate."""

    value: float
    candidates: dict[float, float]


@dataclass
class LensAttackResult:
    """Recovered evaluation images per attack, the attacker's choices and the scores."""

    lens: str
    recovered: dict[str, torch.Tensor]
    choices: dict[str, Choice]
    scores: dict[str, dict[str, float]]
    per_image: dict[str, dict[str, torch.Tensor]]


def make_captures(camera: Camera, images: torch.Tensor, quantise: bool, batch_size: int = 16) -> torch.Tensor:
    """Captures of ``images`` through ``camera`` (eval mode), 8-bit quantised when asked."""
    camera = camera.eval()
    with torch.no_grad():
        psf = camera.psf()
        captures = torch.cat([camera.image(chunk, psf) for chunk in images.split(batch_size)])
    return quantise_8bit(captures) if quantise else captures


def choose_wiener(captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor, lambdas) -> Choice:
    """The Wiener regularisation with the best mean PSNR on the attacker's own faces."""
    restored = wiener_deconvolve(captures, psf, torch.tensor(lambdas, dtype=captures.dtype))
    table = {float(lam): float(psnr(r, originals).mean()) for lam, r in zip(lambdas, restored, strict=True)}
    return Choice(max(table, key=table.get), table)


def choose_rl(
    captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor, iterations, mode: str = "linear"
) -> Choice:
    """The Richardson–Lucy iteration count with the best mean PSNR on the attacker's faces."""
    counts = sorted(int(i) for i in iterations)
    snapshots = richardson_lucy(captures, psf, counts[-1], snapshots=counts, mode=mode)
    table = {float(n): float(psnr(r, originals).mean()) for n, r in zip(counts, snapshots, strict=True)}
    return Choice(max(table, key=table.get), table)


def bicubic_from_large_pixels(captures: torch.Tensor, lowres_size: int) -> torch.Tensor:
    """Read the large-pixel values back (area average) and upsample them bicubically."""
    small = F.adaptive_avg_pool2d(captures, (lowres_size, lowres_size))
    return F.interpolate(small, size=captures.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def score(
    recovered: torch.Tensor, originals: torch.Tensor, identity: IdentityDistance | None
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Mean PSNR, SSIM, identity distance and re-identification rate, and the per-image values."""
    per_image = {"psnr": psnr(recovered, originals).double(), "ssim": ssim(recovered, originals)}
    if identity is not None:
        distance = identity(originals, recovered).double()
        per_image["identity_distance"] = distance
    summary = {name: float(values.mean()) for name, values in per_image.items()}
    if identity is not None:
        valid = ~torch.isnan(distance)
        summary["identity_distance"] = float(distance[valid].mean()) if valid.any() else float("nan")
        summary["reidentified"] = (
            float((distance[valid] < SAME_PERSON_THRESHOLD).double().mean()) if valid.any() else float("nan")
        )
        summary["measured_faces"] = int(valid.sum())
    return summary, per_image


def attack_lens(
    name: str,
    camera: Camera,
    attacker_images: torch.Tensor,
    evaluation_images: torch.Tensor,
    settings: AttackSettings | None = None,
    identity: IdentityDistance | None = None,
    progress: Callable[[str], None] | None = None,
) -> LensAttackResult:
    """Every attack against ``camera``; see the module docstring for the protocol."""
    settings = settings or AttackSettings()
    say = progress or (lambda message: None)
    with torch.no_grad():
        psf = camera.eval().psf()
    attacker_captures = make_captures(camera, attacker_images, settings.quantise)
    captures = make_captures(camera, evaluation_images, settings.quantise)
    recovered: dict[str, torch.Tensor] = {"none": captures}
    choices: dict[str, Choice] = {}
    lowres = camera.config.lowres_size
    if lowres is None:
        say(f"{name}: choosing the Wiener regularisation")
        choices["wiener"] = choose_wiener(attacker_captures, attacker_images, psf, settings.wiener_lambdas)
        recovered["wiener"] = wiener_deconvolve(captures, psf, choices["wiener"].value)
        say(f"{name}: choosing the Richardson–Lucy iteration count")
        mode = camera.config.convolution
        choices["richardson-lucy"] = choose_rl(
            attacker_captures, attacker_images, psf, settings.rl_iterations, mode
        )
        iterations = int(choices["richardson-lucy"].value)
        recovered["richardson-lucy"] = richardson_lucy(captures, psf, iterations, mode=mode)
    else:
        recovered["bicubic"] = bicubic_from_large_pixels(captures, lowres)
    if settings.inversion is not None:
        say(f"{name}: training the inversion network ({settings.inversion.steps} steps)")
        model = train_inversion(camera, attacker_images, settings.inversion, quantise=settings.quantise)
        recovered["inversion"] = invert(model, captures)
    scores, per_image = {}, {}
    for attack, images in recovered.items():
        scores[attack], per_image[attack] = score(images, evaluation_images, identity)
    return LensAttackResult(name, recovered, choices, scores, per_image)
