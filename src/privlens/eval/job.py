"""``privlens evaluate``: the protocol over run folders, the warp backend and software baselines.

Methods compared (one row each):

* every run folder given: a Stage II run uses its generator (``gan``); a Stage I run (learned
  lens or the low-resolution baseline) uses the training-free ``warp`` backend;
* ``<first run>+warp``: the first run's camera and U with the warp backend (when that run has a
  generator, this isolates what the generator adds);
* ``blur`` and ``pixelate``: software baselines applied to the clean image (they leave the raw,
  identifiable image exposed before processing, which is what privlens avoids).

Rows of Stage II runs carry the loss weights that make an ablation (heatmap skip ``w_hpf``,
``lambda_lpips``, ``lambda_expr``) read from the run's ``config.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from privlens.anonymize.models import (
    GENERATOR_FILE,
    load_camera,
    load_generator,
    load_heatmap,
    resolve_models,
)
from privlens.anonymize.pipeline import Anonymizer, GanBackend, WarpBackend
from privlens.anonymize.references import Reference, Slot, load_references
from privlens.data.images import ImageFileError, iter_images, list_images
from privlens.eval.pairs import EvalOptions, PairsReport, render_report
from privlens.eval.protocol import Method, blur_baseline, draw_references, evaluate_methods, pixelate_baseline
from privlens.eval.published import published_markdown, side_by_side
from privlens.files import atomic_write_text
from privlens.report.tables import write_tables

PUBLISHED_NOTE = (
    "Beside each privlens figure: the paper's own figures for its learned lens (Ours) and its "
    "low-resolution camera (Ours-LR), Tables 2-3 of Lopez et al., CVPR 2024 (trained on FFHQ, "
    "evaluated on CelebA-HQ at 256 px; the paper does not state N). They are comparable only where "
    "the 'comparable' column says the protocol matches; all four tables are in published.md."
)
ABLATION_KEYS = ("w_hpf", "lambda_lpips", "lambda_expr")


@dataclass
class EvaluationResult:
    rows: list[dict[str, Any]]
    reports: dict[str, PairsReport]
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_sources(
    data: str | Path, size: int, limit: int | None
) -> tuple[torch.Tensor, list[str], list[Path], list]:
    """Evaluation faces: ``data/val`` when it exists (a prepared folder), else every image of ``data``.

    Returns the images, their names (relative, no suffix), their paths and the skipped files.
    """
    root = Path(data)
    if not root.exists():
        raise ImageFileError(f"data folder not found: {root}")
    folder = root / "val" if (root / "val").is_dir() else root
    images, names, paths, skipped = [], [], [], []
    for path, image in iter_images(list_images(folder), size):
        if isinstance(image, ImageFileError):
            skipped.append((path, str(image)))
            continue
        images.append(image)
        names.append(path.relative_to(folder).with_suffix("").as_posix())
        paths.append(path)
        if limit is not None and len(images) == limit:
            break
    if not images:
        raise ImageFileError(f"no readable images in {folder}")
    return torch.stack(images), names, paths, skipped


def run_ablation_settings(run: Path) -> dict[str, Any]:
    """``w_hpf``, ``lambda_lpips`` and ``lambda_expr`` from a run's ``config.yaml`` (if present)."""
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}
    found: dict[str, Any] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ABLATION_KEYS and not isinstance(value, dict):
                    found[key] = value
                visit(value)

    visit(config)
    return found


def _slots(references: list[Reference], plan_row: list[int], domains: list[str] | None) -> list[Slot]:
    def domain(reference: Reference) -> int | None:
        if domains is None:
            return None
        return domains.index(reference.folder) if reference.folder in domains else 0

    return [Slot(reference=r, domain=domain(references[r])) for r in plan_row]


def pipeline_method(
    name: str, run: Path, size: int, references: list[Reference], force_warp: bool, batch_size: int = 8
) -> Method:
    """A run's camera -> U -> (generator or warp) as a :class:`Method`."""
    warp = force_warp or not (Path(run) / GENERATOR_FILE).is_file()
    paths = resolve_models(run, None, None, "warp" if warp else None)
    camera = load_camera(paths.lens, size)
    heatmap_net = load_heatmap(paths.heatmap)
    if paths.generator is None:
        backend, domains, label = WarpBackend(references), None, "warp"
    else:
        bundle = load_generator(paths.generator)
        backend, domains, label = GanBackend(bundle, references), list(bundle.domains), "gan"
    anonymizer = Anonymizer(camera, heatmap_net, backend)

    def run_method(sources: torch.Tensor, plan: list[list[int]]) -> torch.Tensor:
        outputs = []
        for start in range(0, sources.shape[0], batch_size):
            chunk = sources[start : start + batch_size]
            plans = [_slots(references, row, domains) for row in plan[start : start + batch_size]]
            outputs.append(anonymizer.run(chunk, plans).faces.cpu())
        return torch.cat(outputs)

    return Method(name, run_method, True, f"{run} ({label} backend)")


def run_evaluation(
    runs: list[Path],
    data: Path,
    out: Path,
    size: int = 64,
    references_dir: Path | None = None,
    references_per_source: int = 10,
    seed: int = 0,
    max_sources: int | None = None,
    baselines: bool = True,
    warp_row: bool = True,
    options: EvalOptions | None = None,
    progress: Callable[[str], None] | None = None,
    dataset: str | None = None,
) -> EvaluationResult:
    """Run the protocol and write ``evaluation.{md,csv,json}`` plus one pairs report per method.

    ``dataset`` names the evaluated data for the comparison with the paper's figures (default: the
    data folder's name); ``published.md`` holds the paper's Tables 1-4.
    """
    options = options or EvalOptions(progress=False)
    say = progress or (lambda message: None)
    sources, names, paths, skipped = load_sources(data, size, max_sources)
    pool_root = references_dir or (Path(data) / "val" if (Path(data) / "val").is_dir() else Path(data))
    say(f"loading reference faces from {pool_root}")
    reference_set = load_references(pool_root, size)
    skipped += reference_set.skipped
    references = reference_set.references
    index_of = {reference.path.resolve(): j for j, reference in enumerate(references)}
    exclude = [index_of.get(path.resolve()) for path in paths]  # never a source as its own reference
    plan = draw_references(len(names), len(references), references_per_source, seed, exclude)
    methods: list[Method] = []
    for index, run in enumerate(runs):
        methods.append(pipeline_method(run.name, run, size, references, force_warp=False))
        has_generator = (run / GENERATOR_FILE).is_file()
        if index == 0 and warp_row and has_generator:
            methods.append(pipeline_method(f"{run.name}+warp", run, size, references, force_warp=True))
    if baselines:
        methods += [blur_baseline(), pixelate_baseline()]
    reports = evaluate_methods(methods, sources, names, plan, options, say)
    rows = []
    run_by_name = {run.name: run for run in runs}
    for method in methods:
        report = reports[method.name]
        row: dict[str, Any] = {"method": method.name, "pairs": report.pairs}
        for metric in report.metrics:
            row[metric.name] = metric.value
        if method.name in run_by_name:
            row.update(run_ablation_settings(run_by_name[method.name]))
        rows.append(row)
    out = Path(out)
    extra = {
        "protocol": {
            "sources": len(names),
            "reference_pool": len(references),
            "references_per_source": references_per_source,
            "seed": seed,
            "image_size": size,
            "reference_plan": dict(zip(names, plan, strict=True)),
            # the pipelines' captures (privlens.anonymize.pipeline.Anonymizer), seeded
            "captures": "physical sensor model at each lens file's light: shot and read noise, quantised",
        },
        "methods": {m.name: m.description for m in methods},
        "unavailable": next(iter(reports.values())).unavailable if reports else {},
        "published_for_orientation": {
            "note": PUBLISHED_NOTE,
            "rows": side_by_side(rows, dataset or Path(data).name, size),
        },
    }
    files = write_tables(rows, out / "evaluation", extra)
    for name, report in reports.items():
        files.append(atomic_write_text(out / "pairs" / f"{name}.md", render_report(report, "md")))
    files.append(atomic_write_text(out / "published.md", published_markdown()))
    return EvaluationResult(rows, reports, files, skipped)
