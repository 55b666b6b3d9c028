"""Run every attack against one lens and measure what each recovers.

Protocol. The attacker owns their own faces, disjoint from the evaluated ones (checked, see
:func:`check_disjoint`), and a copy of the camera. They split their faces into a tuning part and
a validation part (seeded), make captures as the physical sensor stores them (shot and read
noise, ADC rounding: :mod:`privlens.attacks.capture`, the model Stage I trains with) and tune
every attack on them: the Wiener regularisation by PSNR, Richardson–Lucy's iteration count by a
plateau rule on the validation PSNR (:class:`PlateauStop`, not a fixed low cap), the blind
attacker's PSF from captures of a calibration target (:mod:`privlens.attacks.blind`), the learned
inversion trained with augmentation until its validation PSNR stops improving. Every attack is
then applied to the captures of the evaluated faces, and to the attacker's validation captures,
whose impostor pairs calibrate the verification threshold (:mod:`privlens.eval.recognition`).

Attacks per lens: ``none`` (the raw capture), ``wiener`` (per channel), ``wiener-mmse`` (the
best linear estimator with the faces' cross-spectrum, :mod:`privlens.attacks.wiener_bound`),
``richardson-lucy``, ``tikhonov`` (regularised least squares with the exact forward model by
conjugate gradients, :func:`privlens.attacks.deconvolution.tikhonov_cg`; regularisation and
iteration count tuned on the attacker's faces), ``blind-wiener`` and ``blind-rl`` (PSF estimated,
not given), ``inversion``, and the hybrids ``rl+inversion`` and ``tikhonov+inversion`` (the tuned
Richardson–Lucy or Tikhonov restoration with the known PSF, then a U-Net trained on the attacker's
own restorations of ``hybrid_copies`` augmented copies of their tuning faces, early stopped like
``inversion``; on the robust lens they are the best attackers by PSNR); for a large-pixel
(``lowres``) sensor, ``bicubic`` and ``inversion``. With a landmark network (U, ``landmarks=``)
and the dlib identity, also ``landmarks``: no restoration, U's 68 landmarks on each capture,
pushed from their mean shape by the factor that ranks the attacker's own faces best, matched in
shape space against the landmarks dlib finds on the gallery's photos
(:mod:`privlens.eval.shape_identity`; TAR thresholds from the attacker's own faces; no PSNR,
identity distance or 0.6 re-identification). Only meaningful when U never trained on the
evaluated faces.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from privlens.attacks.blind import capture_target, estimate_psf
from privlens.attacks.capture import DEFAULT_NOISE, CaptureNoise, sensor_captures
from privlens.attacks.deconvolution import (
    PlateauStop,
    _crop,
    _extend,
    richardson_lucy,
    richardson_lucy_stopping,
    tikhonov_cg,
    wiener_deconvolve,
    wiener_restorations,
)
from privlens.attacks.inversion import (
    InversionTraining,
    augment,
    invert,
    train_inversion,
    train_inversion_on_pairs,
)
from privlens.attacks.wiener_bound import cross_spectrum, otf, wiener_restore
from privlens.eval.quality import psnr
from privlens.eval.recognition import gallery_figures
from privlens.eval.restoration import ssim
from privlens.eval.shape_identity import choose_expansion, expand_from_mean, shape_embeddings
from privlens.optics.camera import Camera

WIENER_LAMBDAS = tuple(float(v) for v in torch.logspace(-7, 0, 15))
BLIND_EPS = tuple(float(v) for v in torch.logspace(-4, 2, 7))
RL_ITERATIONS = (1, 2, 5, 10, 20, 50, 100, 200)
TIKHONOV_LAMBDAS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
TIKHONOV_ITERATIONS = (10, 20, 40, 80)

IdentityDistance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(originals, recovered) -> [B]`` identity distances (NaN where no embedding could be made);
:class:`privlens.attacks.identity.OriginalBoxIdentity` also gives the embeddings."""

LandmarkReader = Callable[[torch.Tensor], np.ndarray]
"""``images [N, 3, S, S] -> [N, 68, 2]`` landmarks in pixels of the images (e.g. U through
:func:`privlens.eval.heatmap.predict_landmarks`)."""

SAME_PERSON_THRESHOLD = 0.6
"""dlib's face_recognition threshold: embeddings closer than this are the same person."""


def full_inversion(steps: int = 6000, width: int = 16, seed: int = 0) -> InversionTraining:
    """The strong suite's learned inversion: batch 16, a validation check every 100 steps, stop
    after 5 checks without gain but never before half of ``steps`` (``privlens attack``'s
    ``--inversion-steps`` and ``--inversion-width``; the default of :class:`AttackSettings`)."""
    # a cap the early stop normally ends first: on the shipped robust lens the rule stopped at
    # 4400 steps (a cap of 2000 had cut the screen's run before convergence); with patience 4 x 50
    # steps it once fired at 350 steps on the slow start (15.8 dB, where the converged run reaches
    # 18.6 dB), hence no stop before half the cap
    return InversionTraining(
        steps=steps, width=width, batch_size=16, check_every=100, patience=5, min_steps=steps // 2, seed=seed
    )


ATTACK_NAMES = (
    "none",
    "wiener",
    "wiener-mmse",
    "richardson-lucy",
    "tikhonov",
    "blind-wiener",
    "blind-rl",
    "bicubic",
    "inversion",
    "rl+inversion",
    "tikhonov+inversion",
    "landmarks",
)
"""Every attack's name, as in the tables (see the module docstring)."""


@dataclass
class AttackSettings:
    """What the attacker tries (defaults: the strong suite at the camera's physical sensor noise).

    ``rl_iterations`` is kept for older callers: when given, its largest value caps RL.
    ``noise``: the sensor noise of every capture (:class:`privlens.attacks.capture.CaptureNoise`;
    captures are always rounded to its bit depth). ``attacks``: when given, only these attacks
    run (names of the module docstring; ``none`` always), e.g. a quick screen of many lenses.
    """

    wiener_lambdas: tuple[float, ...] = WIENER_LAMBDAS
    rl_iterations: tuple[int, ...] | None = None
    rl_max_iterations: int = 3000
    rl_check_every: int = 10
    rl_patience: int = 5
    inversion: InversionTraining | None = field(default_factory=full_inversion)
    noise: CaptureNoise = DEFAULT_NOISE
    mmse: bool = True
    blind: bool = True
    blind_frames: int = 64
    blind_eps: tuple[float, ...] = BLIND_EPS
    blind_floors: tuple[float, ...] = (1.0, 2.0, 3.0)
    mmse_noise_scales: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    validation_fraction: float = 0.25
    seed: int = 0
    attacks: tuple[str, ...] | None = None
    hybrid: bool = True  # rl+inversion and tikhonov+inversion (need the inversion settings)
    tikhonov_lambdas: tuple[float, ...] = TIKHONOV_LAMBDAS
    tikhonov_iterations: tuple[int, ...] = TIKHONOV_ITERATIONS
    hybrid_copies: int = 4

    @property
    def rl_cap(self) -> int:
        return max(self.rl_iterations) if self.rl_iterations else self.rl_max_iterations

    def runs(self, attack: str) -> bool:
        """Whether ``attack`` is part of this suite."""
        return self.attacks is None or attack in self.attacks


@dataclass
class Choice:
    """A parameter the attacker picked, with the attacker's validation PSNR of every candidate."""

    value: float
    candidates: dict[float, float]
    note: str = ""
    iterations: int | None = None  # a second tuned count beside ``value`` (tikhonov's CG steps)


@dataclass
class EnrolledGallery:
    """Other photos of the evaluated people, to identify against instead of the captured photos
    themselves: ``photos`` ``[M, 3, S, S]`` with the person each shows (``labels``), and
    ``evaluated_labels``, the person of each evaluated face. Rank-1 then asks whether a recovery
    is nearest to a photo of its own person (chance ``1 / K`` for K people); pose and expression
    of the captured photo no longer help."""

    photos: torch.Tensor
    labels: list[str]
    evaluated_labels: list[str]

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.photos):
            raise ValueError(f"{len(self.labels)} labels for {len(self.photos)} gallery photos")
        missing = sorted(set(self.evaluated_labels) - set(self.labels))
        if missing:
            raise ValueError(f"evaluated people without a gallery photo: {', '.join(missing)}")
        if len(set(self.labels)) < 2:
            raise ValueError("the gallery needs photos of at least 2 people")


@dataclass
class LensAttackResult:
    """Recovered evaluation images per attack, the attacker's choices and the scores."""

    lens: str
    recovered: dict[str, torch.Tensor]
    choices: dict[str, Choice]
    scores: dict[str, dict[str, float]]
    per_image: dict[str, dict[str, torch.Tensor]]


def check_disjoint(
    attacker: torch.Tensor,
    evaluated: torch.Tensor,
    tolerance: float = 2 / 255,
    others: str = "the attacker's faces",
    advice: str = "the attacker must train on other faces",
) -> None:
    """Raise ``ValueError`` if an evaluated face is also one of the attacker's (or its mirror);
    ``others`` and ``advice`` word the error for another set (e.g. a gallery).

    Faces are compared at 32 px (area), so the same photo at another size is caught too; two
    faces are "the same" when their mean absolute difference is below ``tolerance``.
    """

    def small(images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images.float().mean(1, keepdim=True), size=(32, 32), mode="area").flatten(1)

    a, e = small(attacker), small(evaluated)
    for mirrored in (False, True):
        probe = small(evaluated.flip(-1)) if mirrored else e
        distance = torch.cdist(probe, a, p=1) / a.shape[1]
        shared = (distance < tolerance).any(dim=1)
        if shared.any():
            index = int(shared.nonzero()[0])
            raise ValueError(
                f"evaluated face {index} is also among {others}{' (mirrored)' if mirrored else ''}: {advice}"
            )


def split_attacker(images: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tuning, validation)``: a seeded split of the attacker's own faces (validation >= 4)."""
    n = images.shape[0]
    count = min(n - 1, max(4, int(round(fraction * n))))
    if count < 1:
        raise ValueError(f"the attacker needs at least 2 faces, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return images[order[count:]], images[order[:count]]


def choose_wiener(captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor, lambdas) -> Choice:
    """The Wiener regularisation with the best mean PSNR on the attacker's own faces."""
    restored = wiener_restorations(captures, psf, torch.tensor(lambdas, dtype=captures.dtype))
    table = {float(lam): float(psnr(r, originals).mean()) for lam, r in zip(lambdas, restored, strict=True)}
    return Choice(max(table, key=table.get), table)


def choose_rl(
    captures: torch.Tensor, originals: torch.Tensor, psf: torch.Tensor, iterations, mode: str = "linear"
) -> Choice:
    """The Richardson–Lucy iteration count with the best mean PSNR among fixed candidates."""
    counts = sorted(int(i) for i in iterations)
    snapshots = richardson_lucy(captures, psf, counts[-1], snapshots=counts, mode=mode)
    table = {float(n): float(psnr(r, originals).mean()) for n, r in zip(counts, snapshots, strict=True)}
    return Choice(max(table, key=table.get), table)


def choose_rl_by_rule(
    captures: torch.Tensor,
    originals: torch.Tensor,
    psf: torch.Tensor,
    settings: AttackSettings,
    mode: str = "linear",
) -> Choice:
    """Richardson–Lucy iterations picked by :class:`PlateauStop` on the attacker's faces."""
    rule = PlateauStop(originals, settings.rl_check_every, settings.rl_patience, settings.rl_cap)
    richardson_lucy_stopping(captures, originals, psf, rule, mode)
    note = f"stopped by {rule.stopped_by} after {max(rule.history)} iterations"
    if rule.best < 1:  # no check gave a finite PSNR (e.g. a degenerate estimated PSF)
        note += "; no iteration count gave a finite PSNR, so the attack returns the capture"
    return Choice(float(rule.best), {float(k): v for k, v in rule.history.items()}, note)


def choose_tikhonov(
    captures: torch.Tensor,
    originals: torch.Tensor,
    psf: torch.Tensor,
    lambdas,
    iterations,
    mode: str = "linear",
) -> Choice:
    """The Tikhonov regularisation (``value``) and conjugate-gradient iteration count
    (``iterations``) with the best mean PSNR on the attacker's faces (at small lambda the
    iteration count regularises too). The candidates hold each lambda's PSNR at its best count."""
    table, counts = {}, {}
    with torch.no_grad():
        for lam in lambdas:
            scored = {
                int(k): float(psnr(tikhonov_cg(captures, psf, float(lam), int(k), mode), originals).mean())
                for k in iterations
            }
            counts[float(lam)] = max(scored, key=scored.get)
            table[float(lam)] = scored[counts[float(lam)]]
    best = max(table, key=table.get)
    return Choice(best, table, f"lambda; {counts[best]} conjugate-gradient iterations", counts[best])


def tikhonov_attack(
    psf: torch.Tensor, lam: float, iterations: int, mode: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Regularised least squares with the tuned ``lam`` and ``iterations``."""
    return lambda y: tikhonov_cg(y, psf, lam, iterations, mode)


def richardson_lucy_attack(
    psf: torch.Tensor, iterations: int, mode: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Richardson–Lucy with ``iterations`` picked on the attacker's faces; 0 iterations (nothing
    the attacker could tune) returns the capture itself."""
    if iterations < 1:
        return lambda y: y
    return lambda y: richardson_lucy(y, psf, iterations, mode=mode)


def mmse_attack(
    own_faces: torch.Tensor, psf: torch.Tensor, noise_variance: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The best linear attacker: cross-spectrum of the attacker's faces on the same edge-extended
    canvas as :func:`wiener_deconvolve`, the known PSF and noise variance."""
    extended, _ = _extend(own_faces, psf)
    spectrum = cross_spectrum(extended.double())
    mean = extended.double().mean(dim=(0, 2, 3))
    transfer = otf(psf.double(), tuple(extended.shape[-2:]))

    def recover(captures: torch.Tensor) -> torch.Tensor:
        canvas, offset = _extend(captures, psf)
        out = wiener_restore(canvas.double(), transfer, spectrum, noise_variance, mean)
        return _crop(out, offset, tuple(captures.shape[-2:])).clamp(0, 1).to(captures.dtype)

    return recover


def bicubic_from_large_pixels(captures: torch.Tensor, lowres_size: int) -> torch.Tensor:
    """Read the large-pixel values back (area average) and upsample them bicubically."""
    small = F.adaptive_avg_pool2d(captures, (lowres_size, lowres_size))
    return F.interpolate(small, size=captures.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def _gallery_entries(
    evaluated_items: Sequence, kept: np.ndarray, gallery: EnrolledGallery | None, gallery_items: Sequence = ()
) -> tuple[list, list, list] | None:
    """``(entries, their labels, the kept probes' labels)`` to identify against: the evaluated
    faces' own items (embeddings or landmarks; ``None`` where dlib found no face), labelled by
    position; or, with ``gallery``, the items of its photos (``gallery_items``) labelled by person.
    ``None`` when fewer than two probes or people are left, or a probe's person has no entry."""
    if gallery is None:
        entries = [item for item in evaluated_items if item is not None]
        entry_labels = probe_labels = list(range(len(entries)))
    else:
        entries = [item for item in gallery_items if item is not None]
        entry_labels = [
            label for item, label in zip(gallery_items, gallery.labels, strict=True) if item is not None
        ]
        probe_labels = [label for label, ok in zip(gallery.evaluated_labels, kept, strict=True) if ok]
    if len(probe_labels) < 2 or len(set(entry_labels)) < 2 or not set(probe_labels) <= set(entry_labels):
        return None
    return entries, entry_labels, probe_labels


def _identity_scores(
    identity, evaluated, recovered, own, own_recovered, gallery: EnrolledGallery | None = None
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Recognition figures, per-image distances and per-image rank-1 hits (1.0 when the recovery's
    nearest gallery entry is its own: the original, or with ``gallery`` a photo of its own person),
    over the evaluated faces with a dlib face; NaN where dlib finds no face in the original, or
    when fewer than two such faces (or gallery people with a dlib face) are left."""
    originals, probes, kept = identity.pair_embeddings(evaluated, recovered)
    distance = torch.full((evaluated.shape[0],), float("nan"), dtype=torch.float64)
    hits = torch.full_like(distance, float("nan"))
    row: dict[str, float] = {"faces": int(kept.sum()), "measured_faces": int(kept.sum())}
    if gallery is None:
        distance[torch.from_numpy(kept)] = torch.from_numpy(np.linalg.norm(probes - originals, axis=1))
        photos = ()
    else:
        photos = identity.embeddings(gallery.photos)
    matched = _gallery_entries(list(originals), kept, gallery, photos)
    cal_gallery, cal_probes, _ = identity.pair_embeddings(own, own_recovered)
    if matched is not None and cal_gallery.shape[0] >= 2:
        entries, entry_labels, probe_labels = matched
        figures = gallery_figures(
            probes,
            probe_labels,
            np.stack(entries),
            entry_labels,
            cal_gallery,
            cal_probes,
            same_person=SAME_PERSON_THRESHOLD,
        )
        row.update(figures.row())
        row["identity_distance"], row["reidentified"] = row["id_distance"], row["reid"]
        hits[torch.from_numpy(kept)] = torch.from_numpy(figures.hits.astype(np.float64))
        distance[torch.from_numpy(kept)] = torch.from_numpy(figures.genuine)
    return row, distance, hits


def score(
    recovered: torch.Tensor,
    originals: torch.Tensor,
    identity=None,
    own: torch.Tensor | None = None,
    own_recovered: torch.Tensor | None = None,
    gallery: EnrolledGallery | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """PSNR, SSIM and (with ``identity``) the recognition figures of one attack, plus per-image
    PSNR/SSIM/identity distance (and, with ``own``, ``rank1_hit``). ``own``/``own_recovered``: the
    attacker's validation faces and their recoveries, for the verification threshold (without them
    only distances are given). ``gallery``: identify against other photos of each person."""
    per_image = {"psnr": psnr(recovered, originals).double(), "ssim": ssim(recovered, originals)}
    summary = {name: float(values.mean()) for name, values in per_image.items()}
    if identity is None:
        return summary, per_image
    if own is not None and own_recovered is not None and hasattr(identity, "pair_embeddings"):
        row, distance, per_image["rank1_hit"] = _identity_scores(
            identity, originals, recovered, own, own_recovered, gallery
        )
        summary.update(row)
    else:
        distance = identity(originals, recovered).double()
    per_image["identity_distance"] = distance
    valid = ~torch.isnan(distance)
    summary["identity_distance"] = float(distance[valid].mean()) if valid.any() else float("nan")
    summary["reidentified"] = (
        float((distance[valid] < SAME_PERSON_THRESHOLD).double().mean()) if valid.any() else float("nan")
    )
    summary["measured_faces"] = int(valid.sum())
    return summary, per_image


def landmark_scores(
    identity,
    read_landmarks: LandmarkReader,
    evaluated: torch.Tensor,
    captures: torch.Tensor,
    own: torch.Tensor,
    own_captures: torch.Tensor,
    gallery: EnrolledGallery | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor], Choice | None]:
    """The ``landmarks`` attack's row, per-image values and choice: U's landmarks on the captures,
    pushed from (or towards) their mean shape by the ``alpha`` that ranks the attacker's ``own``
    faces best (:func:`privlens.eval.shape_identity.choose_expansion`), matched in shape space
    against dlib's landmarks on the originals (or, with ``gallery``, on the gallery's photos of
    each person); rank-1 and TAR@FAR over the evaluated faces with a dlib face (thresholds from
    the attacker's own faces). PSNR, SSIM, identity distance and re-identification are not
    measured (NaN). No choice when too few faces have landmarks."""
    nan = torch.full((evaluated.shape[0],), float("nan"), dtype=torch.float64)
    per_image = {"psnr": nan.clone(), "ssim": nan.clone(), "rank1_hit": nan.clone()}
    truth = identity.landmarks(evaluated)
    kept = np.array([points is not None for points in truth])
    row: dict[str, float] = {"faces": int(kept.sum()), "measured_faces": int(kept.sum())}
    row.update({"psnr": float("nan"), "ssim": float("nan")})
    photos = () if gallery is None else identity.landmarks(gallery.photos)
    matched = _gallery_entries(truth, kept, gallery, photos)
    own_truth = identity.landmarks(own)
    own_kept = np.array([points is not None for points in own_truth])
    if matched is None or own_kept.sum() < 2:
        return row, per_image, None
    entries, entry_labels, probe_labels = matched
    own_gallery_points = np.stack([p for p in own_truth if p is not None])
    own_predicted = np.asarray(read_landmarks(own_captures), np.float64)[own_kept]
    alpha, table = choose_expansion(own_predicted, own_gallery_points)
    choice = Choice(
        alpha, table, "alpha: U's landmarks pushed from their mean shape (mean genuine rank, own faces)"
    )
    predicted = expand_from_mean(np.asarray(read_landmarks(captures), np.float64)[kept], alpha)
    probes, entry_vectors = shape_embeddings(predicted, np.stack(entries))
    own_probes, own_gallery = shape_embeddings(expand_from_mean(own_predicted, alpha), own_gallery_points)
    figures = gallery_figures(probes, probe_labels, entry_vectors, entry_labels, own_gallery, own_probes)
    row.update(figures.row())
    for key in ("id_distance", "reid"):  # dlib units and its 0.6 threshold: not this distance
        for suffix in ("", "_lo", "_hi"):
            row[key + suffix] = float("nan")
    row["identity_distance"] = row["reidentified"] = float("nan")
    per_image["rank1_hit"][torch.from_numpy(kept)] = torch.from_numpy(figures.hits.astype(np.float64))
    return row, per_image, choice


def _blind_psf(camera: Camera, own: torch.Tensor, own_originals: torch.Tensor, settings: AttackSettings):
    """The blind attacker's PSF: target captures; eps and the noise floor chosen by Wiener PSNR on
    their own faces (per eps, the best floor). An estimate with nothing above its floor is no
    estimate; if every one is empty (a PSF wider than the target's margin) the attacker keeps the
    capture (a centred delta PSF) instead of deconvolving with an empty kernel."""
    mean_capture, target = capture_target(camera, settings.blind_frames, settings.noise, settings.seed)
    table, psfs, floors = {}, {}, {}
    for eps in settings.blind_eps:
        for floor in settings.blind_floors:
            psf = estimate_psf(mean_capture, target, eps, floor)
            if not bool((psf.sum(dim=(-2, -1)) > 0).all()):
                continue
            value = max(choose_wiener(own, own_originals, psf, settings.wiener_lambdas).candidates.values())
            if eps not in table or value > table[eps]:
                table[eps], psfs[eps], floors[eps] = value, psf, floor
    note = f"{settings.blind_frames} frames of the calibration target"
    if not table:
        delta = torch.zeros_like(mean_capture)
        delta[:, delta.shape[-2] // 2, delta.shape[-1] // 2] = 1.0
        return delta, Choice(
            0.0, {}, note + "; every estimate empty (PSF wider than its margin): no deconvolution"
        )
    best = max(table, key=table.get)
    return psfs[best], Choice(best, table, note + f"; noise floor {floors[best]:g}")


def attack_lens(
    name: str,
    camera: Camera,
    attacker_images: torch.Tensor,
    evaluation_images: torch.Tensor,
    settings: AttackSettings | None = None,
    identity=None,
    progress: Callable[[str], None] | None = None,
    landmarks: LandmarkReader | None = None,
    gallery: EnrolledGallery | None = None,
) -> LensAttackResult:
    """Every attack against ``camera``; see the module docstring for the protocol (``landmarks``:
    U for the ``landmarks`` attack, which needs the dlib ``identity``; ``gallery``: identify
    against other photos of the evaluated people instead of their captured photos)."""
    settings = settings or AttackSettings()
    say = progress or (lambda message: None)
    check_disjoint(attacker_images, evaluation_images)
    tune, own = split_attacker(attacker_images, settings.validation_fraction, settings.seed)
    noise = settings.noise
    with torch.no_grad():
        psf = camera.eval().psf()
    captures = sensor_captures(camera, evaluation_images, noise, seed=settings.seed + 1, psf=psf)
    own_captures = sensor_captures(camera, own, noise, seed=settings.seed + 2, psf=psf)
    tune_captures = sensor_captures(camera, tune, noise, seed=settings.seed + 3, psf=psf)
    attacks: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"none": lambda y: y}
    choices: dict[str, Choice] = {}
    lowres = camera.config.lowres_size
    mode = camera.config.convolution
    if lowres is None:
        if settings.runs("wiener"):
            say(f"{name}: choosing the Wiener regularisation")
            choices["wiener"] = choose_wiener(tune_captures, tune, psf, settings.wiener_lambdas)
            lam = choices["wiener"].value
            attacks["wiener"] = lambda y, lam=lam: wiener_deconvolve(y, psf, lam)
        if settings.mmse and settings.runs("wiener-mmse"):
            say(f"{name}: the best linear attacker (faces' cross-spectrum, noise level tuned)")
            # shot noise at the attacker's own mean capture level, read noise and rounding
            variance = max(noise.variance(camera, float(tune_captures.mean())), 1e-10)
            table, recoverers = {}, {}
            for scale in settings.mmse_noise_scales:
                recoverers[scale] = mmse_attack(tune, psf, variance * scale)
                table[scale] = float(psnr(recoverers[scale](own_captures), own).mean())
            best_scale = max(table, key=table.get)
            choices["wiener-mmse"] = Choice(best_scale, table, "noise-variance scale (model mismatch)")
            attacks["wiener-mmse"] = recoverers[best_scale]
        if settings.runs("richardson-lucy") or (settings.hybrid and settings.runs("rl+inversion")):
            say(f"{name}: Richardson–Lucy until the attacker's validation PSNR stops rising")
            choices["richardson-lucy"] = choose_rl_by_rule(own_captures, own, psf, settings, mode)
            steps = int(choices["richardson-lucy"].value)
            attacks["richardson-lucy"] = richardson_lucy_attack(psf, steps, mode)
        if settings.runs("tikhonov") or (settings.hybrid and settings.runs("tikhonov+inversion")):
            say(f"{name}: regularised least squares (conjugate gradients), tuned on the attacker's faces")
            tuned = choose_tikhonov(
                own_captures, own, psf, settings.tikhonov_lambdas, settings.tikhonov_iterations, mode
            )
            choices["tikhonov"] = tuned
            attacks["tikhonov"] = tikhonov_attack(psf, tuned.value, tuned.iterations, mode)
        if settings.blind and (settings.runs("blind-wiener") or settings.runs("blind-rl")):
            say(f"{name}: blind attacker (PSF from a calibration target)")
            blind_psf, choices["blind-psf"] = _blind_psf(camera, tune_captures, tune, settings)
            choices["blind-wiener"] = choose_wiener(tune_captures, tune, blind_psf, settings.wiener_lambdas)
            blind_lam = choices["blind-wiener"].value
            attacks["blind-wiener"] = lambda y, lam=blind_lam: wiener_deconvolve(y, blind_psf, lam)
            choices["blind-rl"] = choose_rl_by_rule(own_captures, own, blind_psf, settings, mode)
            blind_steps = int(choices["blind-rl"].value)
            attacks["blind-rl"] = richardson_lucy_attack(blind_psf, blind_steps, mode)
    else:
        if settings.runs("bicubic"):
            attacks["bicubic"] = lambda y: bicubic_from_large_pixels(y, lowres)
    if settings.inversion is not None and settings.runs("inversion"):
        training = dataclasses.replace(settings.inversion, noise=noise)
        say(f"{name}: training the inversion network (up to {training.steps} steps)")
        inversion_model = train_inversion(camera, tune, training, validation=(own_captures, own))
        choices["inversion"] = Choice(
            float(inversion_model.trained_steps),
            {float(inversion_model.trained_steps): float(inversion_model.validation_psnr)},
            "training steps (early stop on the attacker's validation PSNR)",
        )
        # bound now: a closure over a shared name would apply whichever network was trained last
        attacks["inversion"] = functools.partial(invert, inversion_model)
    rl_steps = int(choices["richardson-lucy"].value) if "richardson-lucy" in choices else 0
    if settings.inversion is not None and settings.hybrid and settings.runs("rl+inversion") and rl_steps >= 1:
        say(f"{name}: the hybrid attack (Richardson–Lucy, then a U-Net on the attacker's RL outputs)")
        deconvolve = attacks["richardson-lucy"]
        hybrid_model, choices["rl+inversion"] = _train_hybrid(
            camera,
            psf,
            deconvolve,
            tune,
            own_captures,
            own,
            f"Richardson–Lucy outputs ({rl_steps} iterations)",
            settings,
        )
        attacks["rl+inversion"] = lambda y: invert(hybrid_model, _in_chunks(deconvolve, y))
    if (
        settings.inversion is not None
        and settings.hybrid
        and settings.runs("tikhonov+inversion")
        and "tikhonov" in attacks
    ):
        say(f"{name}: the hybrid attack (Tikhonov, then a U-Net on the attacker's Tikhonov outputs)")
        restore = attacks["tikhonov"]  # bound now, as the networks below
        tikhonov_model, choices["tikhonov+inversion"] = _train_hybrid(
            camera, psf, restore, tune, own_captures, own, "Tikhonov outputs", settings
        )
        attacks["tikhonov+inversion"] = lambda y: invert(tikhonov_model, _in_chunks(restore, y))
    recovered, scores, per_image = {}, {}, {}
    for attack, recover in attacks.items():
        with torch.no_grad():
            recovered[attack] = recover(captures)
            own_recovered = recover(own_captures)
        say(f"{name}: scoring {attack}")
        scores[attack], per_image[attack] = score(
            recovered[attack], evaluation_images, identity, own, own_recovered, gallery
        )
    if landmarks is not None and settings.runs("landmarks") and hasattr(identity, "landmarks"):
        say(f"{name}: U's landmarks on the captures against the photos' landmarks")
        scores["landmarks"], per_image["landmarks"], choice = landmark_scores(
            identity, landmarks, evaluation_images, captures, own, own_captures, gallery
        )
        if choice is not None:
            choices["landmarks"] = choice
    return LensAttackResult(name, recovered, choices, scores, per_image)


def _in_chunks(recover: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int = 32):
    return torch.cat([recover(chunk) for chunk in images.split(size)])


def _train_hybrid(
    camera: Camera,
    psf: torch.Tensor,
    deconvolve: Callable[[torch.Tensor], torch.Tensor],
    tune: torch.Tensor,
    own_captures: torch.Tensor,
    own: torch.Tensor,
    inputs_note: str,
    settings: AttackSettings,
):
    """The U-Net of a hybrid (``rl+inversion``, ``tikhonov+inversion``): trained on
    (``deconvolve(capture)``, original) pairs of ``hybrid_copies`` augmented copies of the
    attacker's tuning faces, early stopped on their validation faces' restorations.
    ``inputs_note`` names the restorations in the choice's note."""
    generator = torch.Generator().manual_seed(settings.seed + 5)
    faces = torch.cat([augment(tune, generator) for _ in range(max(1, settings.hybrid_copies))])
    with torch.no_grad():
        captures = sensor_captures(camera, faces, settings.noise, seed=settings.seed + 6, psf=psf)
        inputs, own_inputs = _in_chunks(deconvolve, captures), _in_chunks(deconvolve, own_captures)
    model = train_inversion_on_pairs(inputs, faces, settings.inversion, validation=(own_inputs, own))
    choice = Choice(
        float(model.trained_steps),
        {float(model.trained_steps): float(model.validation_psnr)},
        f"training steps on {len(faces)} {inputs_note} (early stop on the attacker's validation PSNR)",
    )
    return model, choice


def strongest(scores: dict[str, dict[str, float]]) -> str:
    """The attack that identifies best: highest rank-1, then lowest mean identity distance."""

    def key(attack: str) -> tuple[float, float]:
        row = scores[attack]
        rank1 = row.get("rank1", float("nan"))
        distance = row.get("identity_distance", float("nan"))
        return (
            -1.0 if np.isnan(rank1) else rank1,
            -(np.inf if np.isnan(distance) else distance),
        )

    return max(scores, key=key)
