"""Does a Stage II generator do its job? Four figures on held-out faces, each with its N.

For every source x (an aligned face the generator never saw) the pipeline runs as at inference:
y = camera(x), m = U(y), and two new faces x̃_a = G(y, m, S(r_a)), x̃_b = G(y, m, S(r_b)) with two
different references r_a, r_b (reference ``i`` and ``i + 1`` of the reference set, cyclically).
dlib analyses every image at ``analysis_px`` (bicubic up-sampling; dlib's HOG detector misses
faces much below 80 px). The figures and the targets of issue 10:

* ``detected``: fraction of the outputs x̃_a in which dlib finds a face (target >= 0.8), next to
  the same fraction on the sources (the ceiling on these crops);
* ``identity``: fraction of the outputs whose dlib identity distance (128-d ResNet, l2) to their
  source exceeds 0.6, dlib's same-person threshold (target >= 0.95); over the pairs where dlib
  finds both faces;
* ``geometry``: inter-ocular NME (68 points, outer eye corners 36/45, see
  :func:`privlens.eval.heatmap.inter_ocular_nme`) between dlib's landmarks on the output and on
  its source, divided by the NME of those sources' own mean shape (an oracle that knows the
  framing; on aligned crops a strong baseline); target <= 0.7; same pairs as ``identity``;
* ``reference_l1``: mean absolute difference (images in [0, 1]) between x̃_a and x̃_b, the two
  outputs of one source (target >= 0.05); ``latent_l1`` is the same for two latents z (F).

Pure evaluation: no files, no training (:mod:`benchmarks.eval_generator` and ``privlens eval
generator`` wrap it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from privlens.eval.heatmap import inter_ocular_nme
from privlens.eval.shape_identity import landmark_rank1_hits
from privlens.nets import reads_warps

SAME_PERSON = 0.6  # dlib's usual threshold on its identity distance
TARGETS = {"detected": 0.8, "identity": 0.95, "geometry": 0.7, "reference_l1": 0.05}


@dataclass
class GeneratorCheck:
    """The four figures (see the module docstring) and what they rest on."""

    n_sources: int
    n_references: int
    analysis_px: int
    detected: float  # fraction of outputs with a dlib face
    detected_sources: float  # the same on the sources (the ceiling)
    n_pairs: int  # sources where dlib finds a face in both the source and the output
    identity: float | None  # fraction of those pairs with identity distance > 0.6
    identity_mean: float | None  # mean identity distance over those pairs
    nme_output: float | None  # mean NME of the output's landmarks against the source's
    nme_mean_shape: float | None  # mean NME of the sources' own mean shape
    reference_l1: float
    latent_l1: float | None  # None for a painter without latents (the warp backend)
    notes: list[str] = field(default_factory=list)
    # of those pairs, the fraction whose own source is the nearest (dlib) of all the sources with a
    # face (rank-1 identification, chance 1 / n_pairs): tells a leak from an output that is merely
    # close to everyone (a generic face), which the distance alone cannot
    rank1: float | None = None
    impostor_mean: float | None = None  # mean distance from each output to the other sources
    # of those pairs, the fraction whose output's dlib landmarks are nearest (shape space) to its
    # own source's among all of them: the pose and expression the output keeps pick out the photo
    rank1_landmarks: float | None = None

    @property
    def geometry(self) -> float | None:
        """``nme_output / nme_mean_shape`` (lower is better; target <= 0.7)."""
        if self.nme_output is None or not self.nme_mean_shape:
            return None
        return self.nme_output / self.nme_mean_shape

    def passes(self) -> dict[str, bool | None]:
        """Each figure against its target (``None`` where it could not be computed)."""

        def at_least(value: float | None, target: float) -> bool | None:
            return None if value is None else value >= target

        return {
            "detected": at_least(self.detected, TARGETS["detected"]),
            "identity": at_least(self.identity, TARGETS["identity"]),
            "geometry": None if self.geometry is None else self.geometry <= TARGETS["geometry"],
            "reference_l1": at_least(self.reference_l1, TARGETS["reference_l1"]),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "geometry": self.geometry, "passes": self.passes(), "targets": TARGETS}


def _upsample(images: torch.Tensor, px: int) -> torch.Tensor:
    if images.shape[-1] >= px:
        return images
    return F.interpolate(images, size=(px, px), mode="bicubic", align_corners=False).clamp(0, 1)


def _dlib_side(image: torch.Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
    """dlib's 68 landmarks and 128-d identity embedding of the best face, or ``(None, None)``."""
    from privlens.eval.identity import DlibEmbedder
    from privlens.faces.detect import best_face
    from privlens.faces.landmarks import landmarks68

    face = best_face(image, "dlib")
    if face is None:
        return None, None
    return landmarks68(image, face), DlibEmbedder().embed_face(image, face)


@torch.no_grad()
def generate_pairs(
    bundle,
    camera: torch.nn.Module,
    heatmap_net: torch.nn.Module,
    sources: torch.Tensor,
    references: torch.Tensor,
    domain: int = 0,
    seed: int = 0,
    batch_size: int = 16,
    pairs: torch.Tensor | None = None,
    reference_landmarks: torch.Tensor | None = None,
    warps_out: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, ...]:
    """``(x̃_a, x̃_b, x̃_z1, x̃_z2)``, each ``[N, 3, S, S]``: every source with two references
    (``pairs[i]``, ``[N, 2]`` indices; default ``i`` and ``i + 1``, cyclically) and with two
    latents z1, z2 (drawn from ``seed``). A ``content="warp"`` generator reads each reference
    warped onto the landmarks U decodes (``reference_landmarks`` ``[R, 68, 2]`` pixels needed);
    its latent outputs keep the first reference's warp as content, and ``warps_out`` (a list)
    receives those first warps, batch by batch."""
    from privlens.anonymize.pipeline import heatmap_landmarks
    from privlens.anonymize.warp import warp_batch

    device = next(bundle.generator.parameters()).device
    n, r = len(sources), len(references)
    warp_content = reads_warps(bundle.generator)
    if warp_content and reference_landmarks is None:
        raise ValueError("a content='warp' generator needs the references' landmarks")
    if pairs is None:
        pairs = torch.stack([torch.arange(n) % r, (torch.arange(n) + 1) % r], dim=1)
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(2, n, bundle.latent_dim, generator=rng)
    outs: list[list[torch.Tensor]] = [[], [], [], []]
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        x = sources[idx].to(device)
        capture = camera(x).image
        heat = heatmap_net(capture)
        d = torch.full((len(idx),), domain, dtype=torch.long, device=device)
        styles = [
            bundle.style_encoder(references[pairs[idx, 0]].to(device), d),
            bundle.style_encoder(references[pairs[idx, 1]].to(device), d),
            bundle.mapping(z[0, idx].to(device), d),
            bundle.mapping(z[1, idx].to(device), d),
        ]
        contents = [capture] * 4
        if warp_content:
            targets = heatmap_landmarks(heat, sources.shape[-1])
            a, b = (
                warp_batch(references[pairs[idx, k]], reference_landmarks[pairs[idx, k]], targets).to(device)
                for k in (0, 1)
            )
            contents = [a, b, a, a]
            if warps_out is not None:
                warps_out.append(a.float().cpu())
        for out, style, content in zip(outs, styles, contents, strict=True):
            out.append(bundle.generator(content, heat, style).float().cpu())
    return tuple(torch.cat(o) for o in outs)


def check_generator(
    bundle,
    camera: torch.nn.Module,
    heatmap_net: torch.nn.Module,
    sources: torch.Tensor,
    references: torch.Tensor,
    analysis_px: int = 160,
    domain: int = 0,
    seed: int = 0,
    pairs: torch.Tensor | None = None,
    reference_landmarks: torch.Tensor | None = None,
) -> GeneratorCheck:
    """The four figures for ``sources`` ``[N, 3, S, S]`` and ``references`` ``[R >= 2, 3, S, S]``
    (images in [0, 1] at the generator's size); ``pairs`` and ``reference_landmarks``: see
    :func:`generate_pairs`."""
    size = int(bundle.image_size)
    for name, images in (("sources", sources), ("references", references)):
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(
                f"{name} must be [N, 3, {size}, {size}] for this generator, got {tuple(images.shape)}"
            )
    if len(sources) < 1 or len(references) < 2:
        raise ValueError(f"need at least 1 source and 2 references, got {len(sources)} and {len(references)}")
    camera, heatmap_net = camera.eval(), heatmap_net.eval()
    for net in (bundle.generator, bundle.style_encoder, bundle.mapping):
        net.eval()
    warps: list[torch.Tensor] = []
    out_a, out_b, out_z1, out_z2 = generate_pairs(
        bundle,
        camera,
        heatmap_net,
        sources,
        references,
        domain,
        seed,
        pairs=pairs,
        reference_landmarks=reference_landmarks,
        warps_out=warps,
    )
    latent_l1 = float((out_z1 - out_z2).abs().mean())
    check = score_outputs(sources, out_a, out_b, len(references), analysis_px, latent_l1)
    if warps:  # how much a warp-content G changes what it reads
        check.notes.append(
            f"mean L1 between the outputs and the warped references they read: "
            f"{float((out_a - torch.cat(warps)).abs().mean()):.3f} (N = {len(sources)})"
        )
    return check


WARP_CHOICES = ("cycle", "drawn", "far")


def _decoded_landmarks(camera: torch.nn.Module, heatmap_net: torch.nn.Module, sources: torch.Tensor):
    """``[N, 68, 2]``: the landmarks U decodes from the captures of ``sources`` (image pixels)."""
    from privlens.anonymize.pipeline import heatmap_landmarks

    return heatmap_landmarks(heatmap_net.eval()(camera.eval()(sources).image), sources.shape[-1])


def reference_pairs(
    landmarks: torch.Tensor, references: list, size: int, reference_choice: str = "cycle", seed: int = 0
) -> list[list[int]]:
    """Two reference indices per face of ``landmarks`` (``[N, 68, 2]`` pixels of a ``size``
    square): ``cycle`` takes ``i`` and ``i + 1`` (cyclically; fixed), ``drawn`` two distinct ones
    drawn from ``seed`` (what ``anonymize``'s default seeded choice does), ``far`` the two of
    :func:`privlens.anonymize.choice.far_references` (``--reference-choice far``)."""
    from privlens.anonymize.choice import far_references

    if reference_choice not in WARP_CHOICES:
        raise ValueError(f"unknown reference choice {reference_choice!r}; expected one of {WARP_CHOICES}")
    n, rng = len(references), np.random.default_rng(seed)
    if reference_choice == "far":
        return [far_references(references, target, size, count=2) for target in landmarks]
    if reference_choice == "drawn":
        return [[int(k) for k in rng.choice(n, size=2, replace=False)] for _ in landmarks]
    return [[i % n, (i + 1) % n] for i in range(len(landmarks))]


def warp_onto(
    references: list, pairs: list[list[int]], targets, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x̃_a, x̃_b)``: references ``pairs[i][0]`` and ``pairs[i][1]`` warped onto ``targets[i]``
    (``[68, 2]`` pixels of a ``size`` square), each ``[N, 3, size, size]``."""
    from privlens.anonymize.warp import warp_reference

    outs = [
        torch.stack(
            [
                warp_reference(references[pair[k]].image, references[pair[k]].landmarks, target, size)
                for pair, target in zip(pairs, targets, strict=True)
            ]
        )
        for k in (0, 1)
    ]
    return outs[0], outs[1]


@torch.no_grad()
def warp_pairs(
    camera: torch.nn.Module,
    heatmap_net: torch.nn.Module,
    sources: torch.Tensor,
    references: list,
    reference_choice: str = "cycle",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x̃_a, x̃_b)`` of the training-free warp backend, as ``privlens anonymize --backend warp``
    paints them: two references (:class:`privlens.anonymize.references.Reference` items, with
    dlib landmarks; chosen by :func:`reference_pairs`) warped onto the landmarks U decodes from
    the capture."""
    size = sources.shape[-1]
    landmarks = _decoded_landmarks(camera, heatmap_net, sources)
    pairs = reference_pairs(landmarks, references, size, reference_choice, seed)
    return warp_onto(references, pairs, landmarks, size)


@torch.no_grad()
def far_pairs(camera: torch.nn.Module, heatmap_net: torch.nn.Module, sources: torch.Tensor, references: list):
    """``[N, 2]`` reference indices per source by the identity-aware choice on the landmarks U
    decodes from the capture, for painters other than the warp backend (e.g. the generator)."""
    landmarks = _decoded_landmarks(camera, heatmap_net, sources)
    return torch.tensor(reference_pairs(landmarks, references, sources.shape[-1], "far"))


def check_warp_backend(
    camera: torch.nn.Module,
    heatmap_net: torch.nn.Module,
    sources: torch.Tensor,
    references: list,
    analysis_px: int = 160,
    reference_choice: str = "cycle",
    seed: int = 0,
) -> GeneratorCheck:
    """The four figures for the warp backend (the training-free baseline a generator must beat);
    it has no latent, so ``latent_l1`` is ``None``. ``reference_choice``: see :func:`warp_pairs`."""
    if len(references) < 2:
        raise ValueError(f"need at least 2 references with a dlib face, got {len(references)}")
    out_a, out_b = warp_pairs(camera, heatmap_net, sources, references, reference_choice, seed)
    return score_outputs(sources, out_a, out_b, len(references), analysis_px, None)


def score_outputs(
    sources: torch.Tensor,
    out_a: torch.Tensor,
    out_b: torch.Tensor,
    n_references: int,
    analysis_px: int = 160,
    latent_l1: float | None = None,
) -> GeneratorCheck:
    """The four figures from new faces ``out_a`` (reference a) and ``out_b`` (reference b) of
    ``sources`` (all ``[N, 3, S, S]`` in [0, 1]); dlib runs at ``analysis_px``."""
    reference_l1 = float((out_a - out_b).abs().mean())

    big_sources = _upsample(sources.float().cpu(), analysis_px)
    big_outputs = _upsample(out_a.float().cpu(), analysis_px)
    source_sides = [_dlib_side(image) for image in big_sources]
    output_sides = [_dlib_side(image) for image in big_outputs]
    both = [
        i for i in range(len(sources)) if source_sides[i][0] is not None and output_sides[i][0] is not None
    ]
    identity = identity_mean = nme_output = nme_mean = rank1 = impostor_mean = rank1_landmarks = None
    notes = []
    if both:
        distances = np.array([np.linalg.norm(source_sides[i][1] - output_sides[i][1]) for i in both])
        identity, identity_mean = float((distances > SAME_PERSON).mean()), float(distances.mean())
        gallery = np.stack([source_sides[i][1] for i in both])
        probes = np.stack([output_sides[i][1] for i in both])
        table = np.linalg.norm(probes[:, None] - gallery[None], axis=-1)  # [output, source]
        rank1 = float((table.argmin(axis=1) == np.arange(len(both))).mean())
        impostor = table[~np.eye(len(both), dtype=bool)]
        impostor_mean = float(impostor.mean()) if impostor.size else None
        truth = np.stack([source_sides[i][0] for i in both])
        predicted = np.stack([output_sides[i][0] for i in both])
        nme_output = float(inter_ocular_nme(predicted, truth).mean())
        nme_mean = float(inter_ocular_nme(truth.mean(axis=0), truth).mean())
        if len(both) >= 2:
            rank1_landmarks = float(landmark_rank1_hits(predicted, truth).mean())
    else:
        notes.append(
            "dlib found no source/output pair with a face in both: identity and geometry not computed"
        )
    return GeneratorCheck(
        n_sources=len(sources),
        n_references=n_references,
        analysis_px=max(analysis_px, int(sources.shape[-1])),
        detected=float(np.mean([side[0] is not None for side in output_sides])),
        detected_sources=float(np.mean([side[0] is not None for side in source_sides])),
        n_pairs=len(both),
        identity=identity,
        identity_mean=identity_mean,
        nme_output=nme_output,
        nme_mean_shape=nme_mean,
        reference_l1=reference_l1,
        latent_l1=latent_l1,
        notes=notes,
        rank1=rank1,
        impostor_mean=impostor_mean,
        rank1_landmarks=rank1_landmarks,
    )


def render_check(check: GeneratorCheck, fmt: str = "md", painter: str = "Stage II generator") -> str:
    """The figures as a markdown table (``md``) or JSON (``json``); ``painter`` titles the table."""
    if fmt == "json":
        return json.dumps(check.to_dict(), indent=2) + "\n"
    if fmt != "md":
        raise ValueError(f"format must be md or json, got {fmt!r}")

    def cell(value: float | None, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    def verdict(ok: bool | None) -> str:
        return {True: "yes", False: "**no**", None: "n/a"}[ok]

    passes = check.passes()
    lines = [
        f"# {painter} on {check.n_sources} held-out faces "
        f"({check.n_references} references, dlib at {check.analysis_px} px)",
        "",
        "| figure | value | target | met | baseline / N |",
        "|---|---|---|---|---|",
        f"| dlib finds a face in the output | {cell(check.detected)} | >= 0.8 "
        f"| {verdict(passes['detected'])} | sources: {cell(check.detected_sources)}; N = {check.n_sources} |",
        f"| identity distance to the source > 0.6 | {cell(check.identity)} | >= 0.95 "
        f"| {verdict(passes['identity'])} | mean distance {cell(check.identity_mean)}; "
        f"N = {check.n_pairs} pairs |",
        f"| landmark NME output vs source / mean-shape NME | {cell(check.geometry)} | <= 0.7 "
        f"| {verdict(passes['geometry'])} | NME {cell(check.nme_output)} vs mean shape "
        f"{cell(check.nme_mean_shape)}; N = {check.n_pairs} pairs |",
        f"| mean L1 between the outputs of two references | {cell(check.reference_l1)} | >= 0.05 "
        f"| {verdict(passes['reference_l1'])} | two latents: {cell(check.latent_l1)}; "
        f"N = {check.n_sources} |",
    ]
    if check.rank1 is not None:
        lines.append(
            f"\n- not a target: the output's own source is the nearest of the {check.n_pairs} sources for "
            f"{check.rank1:.3f} of them (chance {1 / check.n_pairs:.3f}); mean distance to the other "
            f"sources {cell(check.impostor_mean)}"
        )
    if check.rank1_landmarks is not None:
        lines.append(
            f"\n- not a target: the output's dlib landmarks lie nearest (shape space) to its own source's "
            f"for {check.rank1_landmarks:.3f} of the {check.n_pairs} (chance {1 / check.n_pairs:.3f}): the "
            "pose and expression kept pick out the photo"
        )
    lines += [f"\n- {note}" for note in check.notes]
    return "\n".join(lines) + "\n"
