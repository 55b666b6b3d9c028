"""``privlens report RUN_DIR``: one self-contained HTML page from a demo (or similar) folder.

It reads what the jobs wrote and computes nothing: ``summary.json``, ``comparison.png``,
``psf/*.png``, ``attacks/attacks.json`` and ``attack_*.png``, ``anonymized.png``,
``evaluation/evaluation.json``, and every Stage I/II run folder's ``config.yaml`` and
``summary.json`` (provenance). Sections whose files are absent are left out.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from privlens.files import atomic_write_text
from privlens.report.html import Figure, Page, Section, Table, render

IDENTITY = "DIS FR (dlib)"


def mechanics_note(summary: dict, faces: dict[str, int]) -> str:
    """What the demo's models are, with the measured training time and the number of faces."""
    stage1 = summary.get("stage1") or {}
    count = f" on {faces['train']} embedded faces" if faces.get("train") else ""
    shipped = stage1.get("shipped") if isinstance(stage1.get("shipped"), dict) else None
    if shipped is not None:
        seconds = _number(shipped.get("seconds"))
        took = f"{seconds:.0f} s" if seconds is not None else "an unrecorded time"
        machine = shipped.get("machine", "an unrecorded machine")
        head = (
            f"The learned lens and U are the models shipped with privlens (`make models`): "
            f"{shipped.get('steps', '?')} Stage I steps, {took} on {machine}"
            f"{count} at 64 px; the low-resolution baseline was trained here"
        )
    else:
        seconds = _number((summary.get("seconds") or {}).get("stage I"))
        steps = sum(int(run.get("steps") or 0) for run in stage1.values() if isinstance(run, dict))
        head = (
            f"These models were trained for {seconds:.0f} s"
            if seconds is not None
            else "These models were trained briefly"
        )
        if steps:
            head += f" ({steps} Stage I steps over {len(stage1)} runs)"
        head += f"{count} at 64 px"
    return (
        f"{head}: they show the mechanics of the method, not the paper's quality. Train on CelebA-HQ "
        "or FFHQ at 256 px (configs/stage1_celebahq.yaml, configs/stage2_celebahq.yaml) for "
        "meaningful numbers."
    )


class ReportInputError(ValueError):
    """A file the report reads exists but is not what a privlens job writes."""


def _json(path: Path) -> dict[str, Any]:
    """A JSON object file; ``{}`` when absent; :class:`ReportInputError` when it is something else."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportInputError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ReportInputError(f"{path} holds a JSON {type(data).__name__}, not the object privlens writes")
    return data


def _number(value: Any) -> float | None:
    return (
        value
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
        else None
    )


def _of(count: Any, total: Any) -> str:
    """``"21 of 24 pairs"``, ``"24 pairs"`` or ``"an unrecorded number of pairs"``."""
    if count is None:
        return f"{total} pairs (count per metric not recorded)" if total else "an unrecorded number of pairs"
    return f"{count} of {total} pairs" if total not in (None, count) else f"{count} pairs"


def _key_points(
    summary: dict, attacks: list[dict], evaluation: list[dict], counts: dict[str, dict[str, int]], faces: dict
) -> list[str]:
    points = []
    for lens in dict.fromkeys(row["lens"] for row in attacks):
        rows = [r for r in attacks if r["lens"] == lens and _number(r.get("reidentified")) is not None]
        if rows:
            worst = max(rows, key=lambda r: r["reidentified"])
            measured = worst.get("measured_faces")
            of = f" of {measured} faces" if measured is not None else " of the faces"
            points.append(
                f"lens {lens}: the strongest attack ({worst['attack']}) re-identifies "
                f"{100 * worst['reidentified']:.0f}%{of} (dlib distance < 0.6)."
            )
    held_out = f" on {faces['val']} held-out faces" if faces.get("val") else " (held-out faces)"
    for mode, run in summary.get("stage1", {}).items():
        nme = _number((run.get("val_end") or {}).get("nme")) if isinstance(run, dict) else None
        if nme is not None:
            where = f" on {run['heldout_faces']} held-out faces" if run.get("heldout_faces") else held_out
            points.append(
                f"Stage I {mode}: U's landmark NME {100 * nme:.1f}%{where} after {run.get('steps')} steps."
            )
    if summary.get("backend"):
        points.append(
            f"new faces painted by the {summary['backend']} backend: {summary.get('backend_reason', '')}"
        )
    for row in evaluation:
        dis = _number(row.get(IDENTITY))
        if dis is not None:
            basis = _of(counts.get(row["method"], {}).get(IDENTITY), row.get("pairs"))
            points.append(
                f"{row['method']}: identity distance to the source {dis:.2f} over {basis} in which dlib "
                "found a face on both sides (higher hides more; 0.6 = same person)."
            )
    return points


def _faces(run_dir: Path) -> dict[str, int]:
    """Training and held-out face counts of the demo's prepared data (``data/landmarks.csv``)."""
    path = run_dir / "data" / "landmarks.csv"
    counts: dict[str, int] = {}
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                split = row.get("split") or ""
                counts[split] = counts.get(split, 0) + 1
    return counts


def metric_counts(evaluation_dir: Path, payload: dict) -> dict[str, dict[str, int]]:
    """Per method, the number of pairs behind each metric: ``metric_counts`` of evaluation.json if
    present, else the ``n=`` list that ``pairs/<method>.md`` prints under its table."""
    recorded = payload.get("metric_counts")
    if isinstance(recorded, dict):
        return recorded
    counts: dict[str, dict[str, int]] = {}
    for path in sorted((evaluation_dir / "pairs").glob("*.md")):
        found = re.search(r"both sides have a face \((.*)\)\.", path.read_text(encoding="utf-8"))
        if not found:
            continue
        items = (item.rsplit(" n=", 1) for item in found.group(1).split(", "))
        counts[path.stem] = {name: int(n) for name, n in (i for i in items if len(i) == 2) if n.isdigit()}
    return counts


GENERATOR_FIGURES = (  # (key of the held-out check, what it is, target)
    ("detected", "dlib finds a face in the output", ">= 0.8"),
    ("identity", "identity distance to the source > 0.6", ">= 0.95"),
    ("geometry", "landmark NME output vs source / mean-shape NME", "<= 0.7"),
    ("reference_l1", "mean L1 between two references' outputs", ">= 0.05"),
)


def _generator_section(run_dir: Path) -> Section | None:
    """Issue 10's four figures of a shipped generator on held-out faces, next to the warp
    backend's on the same faces, from the ``heldout_check`` / ``warp_baseline`` records of its
    provenance (``*/provenance.json``, key ``generator``)."""
    for path in sorted(run_dir.glob("*/provenance.json")):
        record = _json(path).get("generator")
        if not isinstance(record, dict) or not isinstance(record.get("heldout_check"), dict):
            continue
        check, warp = record["heldout_check"], record.get("warp_baseline") or {}
        rows = []
        for key, name, target in GENERATOR_FIGURES:
            passes_g, passes_w = (check.get("passes") or {}).get(key), (warp.get("passes") or {}).get(key)
            rows.append(
                {
                    "figure": name,
                    "target": target,
                    "generator": _figure(check.get(key), passes_g),
                    "warp backend": _figure(warp.get(key), passes_w) if warp else "not measured",
                }
            )
        caption = (
            f"N = {check.get('n_sources', '?')} held-out faces ({check.get('n_pairs', '?')} with a dlib "
            f"face in source and output for identity and NME), dlib at {check.get('analysis_px', '?')} px; "
            "the same faces for both painters"
        )
        return Section(
            "Stage II generator on held-out faces",
            [
                f"The shipped generator ({record.get('steps', '?')} steps, {record.get('seconds', '?')} s on "
                f"{record.get('machine', 'an unrecorded machine')}) against the training-free warp backend, "
                "on faces neither was trained on (benchmarks/eval_generator.py)."
            ],
            tables=[Table(rows, caption)],
        )
    return None


def _figure(value: Any, passes: Any) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    return f"{number:.2f} ({'met' if passes else 'not met'})"


def _provenance(run_dir: Path) -> Section | None:
    rows = []
    for config_path in sorted(run_dir.glob("*/config.yaml")):
        run = config_path.parent
        summary = _json(run / "summary.json")
        try:
            config = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError:
            config = {}
        data = config.get("data", {}) if isinstance(config, dict) else {}
        train = config.get("train", {}) if isinstance(config, dict) else {}
        rows.append(
            {
                "model": run.name,
                "kind": summary.get("mode", summary.get("kind", "")),
                "data": str(data.get("root", "")),
                "image size": data.get("image_size", ""),
                "steps": summary.get("steps", train.get("steps", "")),
                "config": str(config_path.relative_to(run_dir)),
            }
        )
    for path in sorted(run_dir.glob("*/provenance.json")):
        for kind, record in _json(path).items():
            if isinstance(record, dict):
                commit, digest = str(record.get("git_commit", "?")), str(record.get("sha256", "?"))
                rows.append(
                    {
                        "model": f"{path.parent.name}: {record.get('file', kind)}",
                        "kind": f"shipped {kind}",
                        "data": str(record.get("data", "")),
                        "image size": record.get("image_size", ""),
                        "steps": record.get("steps", ""),
                        "config": f"{record.get('config', '')} (commit {commit[:12]}, sha256 {digest[:12]})",
                    }
                )
    if not rows:
        return None
    return Section(
        "Provenance of every model",
        [
            "Each run folder holds its resolved config.yaml, summary.json and safetensors weights; "
            "shipped models carry the provenance record written when they were trained."
        ],
        tables=[Table(rows)],
    )


def build_page(run_dir: Path, anonymized: Path | None = None) -> Page:
    run_dir = Path(run_dir)
    summary = _json(run_dir / "summary.json")
    attack_payload = _json(run_dir / "attacks" / "attacks.json")
    attacks = attack_payload.get("rows", [])
    evaluation_payload = _json(run_dir / "evaluation" / "evaluation.json")
    evaluation = evaluation_payload.get("rows", [])
    counts = metric_counts(run_dir / "evaluation", evaluation_payload)
    faces = _faces(run_dir)
    page = Page(
        "privlens: privacy-preserving optics for face de-identification",
        f"report of {run_dir}",
        _key_points(summary, attacks, evaluation, counts, faces),
    )
    page.sections.append(Section("What this shows", [mechanics_note(summary, faces)]))
    if (run_dir / "comparison.png").is_file():
        rows = [{"lens": k, "PSNR vs scene (dB)": v} for k, v in summary.get("psnr_db", {}).items()]
        caption = "PSNR of the astronaut's capture against the scene (N = 1 image per lens)"
        page.sections.append(
            Section(
                "Captures through each lens",
                ["The raw scene never leaves the optics: these captures are all a sniffer could steal."],
                tables=[Table(rows, caption)] if rows else [],
                figures=[
                    Figure(
                        run_dir / "comparison.png",
                        "the astronaut and one embedded face (N = 2 images) captured through every lens",
                    )
                ],
            )
        )
    psf_figures = [
        Figure(
            path,
            f"{path.stem}: phase mask and R/G/B PSFs, computed from the lens's coefficients (no data); "
            "each PSF is cropped to where its light is, with the share of light shown in its title",
        )
        for path in sorted((run_dir / "psf").glob("*.png"))
    ]
    if psf_figures:
        page.sections.append(Section("Phase masks and PSFs", figures=psf_figures))
    if attacks:
        protocol = attack_payload.get("protocol", {})
        evaluated = protocol.get("evaluation_faces", "?")
        figures = [
            Figure(
                p,
                f"attacks on lens {p.stem.removeprefix('attack_')}: examples from the {evaluated} "
                "evaluated faces",
            )
            for p in sorted((run_dir / "attacks").glob("attack_*.png"))
        ]
        attack_caption = (
            f"N = {evaluated} evaluated faces (measured_faces: those dlib finds in the original); the "
            f"attacker tuned on {protocol.get('attacker_faces', '?')} other faces"
        )
        page.sections.append(
            Section(
                "Attacks: how much identity leaks",
                [
                    "Non-blind Wiener and Richardson-Lucy with the measured PSF (tuned on the "
                    "attacker's own faces), bicubic upsampling for the low-res sensor, and a U-Net "
                    "trained on the attacker's copy of the camera. reidentified = share of faces whose "
                    "recovery is within dlib's 0.6 same-person distance."
                ],
                tables=[Table(attacks, attack_caption)],
                figures=figures,
            )
        )
    picture = anonymized or (run_dir / "anonymized.png")
    if picture.is_file():
        page.sections.append(
            Section(
                "Anonymisation",
                [f"Backend: {summary.get('backend', 'unknown')}. {summary.get('backend_reason', '')}"],
                figures=[
                    Figure(
                        picture,
                        "one source face (N = 1; never stored by a privlens camera) | capture | "
                        "U's heatmap | new faces",
                    )
                ],
            )
        )
    if evaluation:
        protocol = evaluation_payload.get("protocol", {})
        published = evaluation_payload.get("published_for_orientation", {})
        unavailable = evaluation_payload.get("unavailable", {})
        notes = [f"unavailable: {name}: {reason}" for name, reason in unavailable.items()]
        shown = []
        for row in evaluation:
            n = counts.get(row.get("method"), {}).get(IDENTITY)
            shown.append(
                {"method": row.get("method"), "pairs": row.get("pairs"), f"n {IDENTITY}": n}
                | {k: v for k, v in row.items() if k not in ("method", "pairs")}
            )
        table_caption = (
            f"N = {protocol.get('sources', '?')} source faces x {protocol.get('references_per_source', '?')} "
            f"references = pairs per method; n {IDENTITY}: the pairs in which dlib found a face on both "
            "sides, the only ones its identity distance averages"
        )
        page.sections.append(
            Section(
                "Evaluation protocol",
                [
                    f"{protocol.get('sources', '?')} source faces, each de-identified with "
                    f"{protocol.get('references_per_source', '?')} references drawn with seed "
                    f"{protocol.get('seed', '?')}. DIS: identity distance (higher hides more); LM/Box: "
                    "landmark and box error in px (lower keeps geometry); Detection: faces still found "
                    "(%); FD-dlib: Frechet distance of dlib embeddings, an offline stand-in, not FID."
                ],
                notes,
                [Table(shown, table_caption)],
            )
        )
        if published:
            page.sections.append(
                Section(
                    "Published figures, for orientation only",
                    [published.get("note", "")],
                    tables=[Table(published.get("rows", []))],
                )
            )
    generator = _generator_section(run_dir)
    if generator is not None:
        page.sections.append(generator)
    provenance = _provenance(run_dir)
    if provenance is not None:
        page.sections.append(provenance)
    if summary.get("seconds"):
        page.sections.append(
            Section(
                "Timing",
                ["Wall-clock seconds of each demo step, as measured while it ran."],
                tables=[Table([{"step": k, "seconds": v} for k, v in summary["seconds"].items()], digits=1)],
            )
        )
    return page


def write_demo_report(run_dir: str | Path, anonymized: Path | None = None) -> Path:
    """Render ``run_dir/report.html``; returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    if not run_dir.is_dir():
        raise ReportInputError(f"{run_dir} is a file, not a run folder")
    return atomic_write_text(run_dir / "report.html", render(build_page(run_dir, anonymized)))
