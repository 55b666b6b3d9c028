"""The paper's evaluation protocol: every source face de-identified with several references.

Each source face of the evaluation split is de-identified with ``k`` (10 by default) distinct
reference faces drawn with a seeded generator from the reference pool; every (source, output)
pair is scored by :func:`privlens.eval.pairs.evaluate_images` and the averages are reported.
Software baselines (blur, pixelation) ignore the references, so they are scored once per source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from privlens.eval.pairs import EvalOptions, PairsReport, evaluate_images, make_embedders

Deidentifier = Callable[[torch.Tensor, list[list[int]]], torch.Tensor]
"""``(sources [N, 3, S, S], plan) -> [N, k, 3, S, S]``: output ``j`` of source ``i`` uses
reference ``plan[i][j]``."""


def draw_references(
    num_sources: int,
    pool_size: int,
    k: int = 10,
    seed: int = 0,
    exclude: list[int | None] | None = None,
) -> list[list[int]]:
    """``k`` distinct reference indices in ``[0, pool_size)`` per source, the same for one seed.

    ``exclude[i]`` (when given) is a pool index source ``i`` must not get: the source itself,
    when references are drawn from the evaluation split.
    """
    if k < 1:
        raise ValueError(f"references per source must be >= 1, got {k}")
    needed = k + (1 if exclude is not None and any(e is not None for e in exclude) else 0)
    if pool_size < needed:
        raise ValueError(f"need at least {needed} usable reference faces, got {pool_size}")
    generator = torch.Generator().manual_seed(seed)
    plan = []
    for i in range(num_sources):
        banned = exclude[i] if exclude is not None else None
        order = [j for j in torch.randperm(pool_size, generator=generator).tolist() if j != banned]
        plan.append(order[:k])
    return plan


@dataclass
class Method:
    """A de-identification method under evaluation.

    ``uses_references=False`` marks software baselines whose output does not depend on the
    reference (scored on one output per source).
    """

    name: str
    deidentify: Deidentifier
    uses_references: bool = True
    description: str = ""


def blur_baseline(sigma_fraction: float = 1 / 16) -> Method:
    """Gaussian blur of the clean image, sigma = ``sigma_fraction`` x image side."""

    def run(sources: torch.Tensor, plan: list[list[int]]) -> torch.Tensor:
        sigma = max(0.5, sigma_fraction * sources.shape[-1])
        kernel = 2 * int(3 * sigma) + 1
        return gaussian_blur(sources, [kernel, kernel], [sigma, sigma])[:, None]

    return Method("blur", run, False, f"Gaussian blur of the clean image, sigma = {sigma_fraction:g} x side")


def pixelate_baseline(blocks: int = 16) -> Method:
    """Pixelation of the clean image into ``blocks x blocks`` cells."""

    def run(sources: torch.Tensor, plan: list[list[int]]) -> torch.Tensor:
        small = F.adaptive_avg_pool2d(sources, blocks)
        return F.interpolate(small, size=sources.shape[-2:], mode="nearest")[:, None]

    return Method("pixelate", run, False, f"pixelation of the clean image into {blocks}x{blocks} cells")


def evaluate_methods(
    methods: list[Method],
    sources: torch.Tensor,
    names: list[str],
    plan: list[list[int]],
    options: EvalOptions,
    progress: Callable[[str], None] | None = None,
) -> dict[str, PairsReport]:
    """Score every method on ``sources`` with ``plan``; one :class:`PairsReport` per method."""
    say = progress or (lambda message: None)
    embedders, unavailable = make_embedders(options)
    analysed: dict = {}
    originals = list(sources)  # one tensor object per source: its analysis is cached by id
    reports = {}
    for method in methods:
        say(f"evaluating {method.name}")
        with torch.no_grad():
            outputs = method.deidentify(sources, plan if method.uses_references else [[0]] * len(names))
        pairs_a, pairs_b, labels = [], [], []
        for i, name in enumerate(names):
            for j in range(outputs.shape[1]):
                pairs_a.append(originals[i])
                pairs_b.append(outputs[i, j].cpu())
                labels.append(f"{name}/ref{plan[i][j]}" if method.uses_references else name)
        report = evaluate_images(pairs_a, pairs_b, labels, options, embedders, unavailable, analysed)
        report.originals, report.deidentified = "sources", method.name
        reports[method.name] = report
    return reports
