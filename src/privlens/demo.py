"""The main job on embedded data (what ``make demo`` runs): the whole pipeline, end to end.

1. the embedded faces (100 LFW faces and the astronaut) prepared with dlib landmarks (``data/``),
   named as in the shipped models' recipe so that the held-out ``val`` split is the same faces the
   shipped models never saw;
2. Stage I: by default the models shipped with privlens (:mod:`privlens.models`: the learned lens
   and the U trained with it, ``make models``) copied into ``shipped-lens/`` with their provenance;
   with ``train_stage1`` a short Stage I on the tiny config instead (``stage1-heatmap/``,
   ``stage1-optics/``). The low-resolution baseline is always trained here (``stage1-lowres/``,
   from the shipped clean-face U unless ``train_stage1``);
3. the astronaut and a face captured through the open, defocus, low-res, prototype, learned (and,
   when shipped, the robust lens and the aperture stop at the paper camera's exposure time)
   lenses (``captures/``, ``psf/``, ``comparison.png``);
4. the attack suite on every lens (``attacks/``): the evaluated faces are held-out faces, the
   attacker trains on the training split;
5. anonymisation with the learned lens: the Stage II generator if one is given (``gan_run``),
   otherwise the training-free warp backend (``anonymized.png``);
6. the evaluation protocol on the learned lens, the low-res camera and the software baselines
   (``evaluation/``, held-out faces);
7. ``report.html``, one self-contained page.

Models trained for minutes on about 80 tiny faces show the mechanics, not the paper's quality;
``summary.json`` and the report give the measured seconds of every step and the shipped models'
provenance (steps, seconds, machine, commit).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from privlens.attacks.identity import OriginalBoxIdentity
from privlens.attacks.inversion import InversionTraining
from privlens.attacks.job import AttackReport, run_attack_job
from privlens.attacks.suite import AttackSettings
from privlens.data.images import save_image
from privlens.data.samples import astronaut, lfw_faces
from privlens.eval.quality import psnr
from privlens.files import atomic_write_text
from privlens.optics.lensfile import save_lens
from privlens.optics.presets import LENS_PRESETS, make_camera
from privlens.report.figures import image_table, plot_lens

TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "stage1_tiny.yaml"
DEMO_SIZE = 64


@dataclass(frozen=True)
class DemoScale:
    """How much work each step does. ``FULL`` fits about five minutes on a 2-core CPU."""

    heatmap_steps: int
    optics_steps: int
    lowres_steps: int
    attack_faces: int
    inversion_steps: int
    rl_iterations: tuple[int, ...]
    eval_sources: int
    references_per_source: int
    faces: int


FULL = DemoScale(600, 200, 100, 12, 120, (1, 5, 20, 50), 8, 3, 100)
FAST = DemoScale(4, 3, 2, 4, 5, (1, 3), 3, 2, 40)
SHIPPED_RUN = "shipped-lens"
"""The demo's folder holding the shipped lens and U laid out as a Stage I run folder."""


@dataclass
class DemoResult:
    out_dir: Path
    comparison: Path
    psnr_db: dict[str, float]
    attacks: AttackReport | None = None
    evaluation_rows: list[dict] = field(default_factory=list)
    backend: str = "warp"
    backend_reason: str = ""
    report: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _stage1(mode: str, data: Path, out: Path, steps: int, *overrides: str):
    from privlens.train.config import load_config
    from privlens.train.stage1 import run_stage1
    from privlens.train.stage1_config import Stage1Config

    settings = [f"data.root={data}", f"train.steps={steps}", "train.progress=false", *overrides]
    config = load_config(Stage1Config, TINY_CONFIG, settings)
    return run_stage1(mode, config, out, resume=True)


@dataclass(frozen=True)
class ShippedStage1:
    """The shipped lens and U as a run folder (``run_dir``) and what the report shows of them."""

    run_dir: Path
    summary: dict


def shipped_stage1(out: Path) -> ShippedStage1:
    """Copy the shipped lens and the U trained with it into ``out/shipped-lens`` (the layout of a
    ``privlens train optics`` run folder), with both provenance records in ``provenance.json``.

    Raises :class:`privlens.models.ModelFileError` when this installation lacks them."""
    from privlens.files import atomic_copy
    from privlens.models import shipped, shipped_path, shipped_provenance

    run = out / SHIPPED_RUN
    run.mkdir(parents=True, exist_ok=True)
    atomic_copy(shipped_path("lens"), run / "lens.safetensors")
    atomic_copy(shipped_path("heatmap"), run / "heatmap_net.safetensors")
    lens, heatmap = shipped_provenance("lens"), shipped_provenance("heatmap")
    provenance = {"lens": lens, "heatmap": heatmap}
    if shipped("generator").available():  # its held-out figures (and the warp baseline's) for the report
        provenance["generator"] = shipped_provenance("generator")
    atomic_write_text(run / "provenance.json", json.dumps(provenance, indent=2))
    metrics = heatmap.get("metrics") or {}
    summary = {
        "mode": "shipped",
        "steps": heatmap.get("steps"),
        "seconds": heatmap.get("seconds"),
        "machine": heatmap.get("machine"),
        "git_commit": heatmap.get("git_commit"),
        "heldout_faces": metrics.get("heldout_faces"),
        "val_end": {"nme": metrics.get("nme_u_lens")},
    }
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2))
    return ShippedStage1(run, summary)


SHIPPED_EXTRA_LENSES = {"robust": "lens-robust", "stop": "lens-stop-video"}
"""Shipped lenses the demo also captures through and attacks: demo name -> model name. The stop
is the one a video camera can use (same exposure time as the paper's f/12.5, so 1/816 of the
light), not ``lens-stop``, whose figures assume an exposure 816 times longer."""


def shipped_lens_file(model: str) -> str | None:
    """The file of the shipped lens ``model``, or ``None`` when this installation has none."""
    from privlens.models import ModelFileError, shipped_path

    try:
        return str(shipped_path(model))
    except ModelFileError:
        return None


def prepare_demo_faces(out: Path, count: int) -> Path:
    """The embedded faces as a prepared folder (64 px, dlib landmarks, 20 % validation).

    Files are named as in the shipped models' recipe (``lfw000.png`` ..., ``astronaut.png``) so the
    stable-hash ``val`` split holds the faces those models never trained on."""
    from privlens.data.prepare import prepare_faces

    source = out / "lfw-source"
    for i, face in enumerate(lfw_faces()[:count]):
        path = source / f"lfw{i:03d}.png"
        if not path.exists():
            save_image(face, path)
    if not (source / "astronaut.png").exists():
        save_image(astronaut(None), source / "astronaut.png")
    prepared = out / "data"
    prepare_faces(source, prepared, size=DEMO_SIZE, val_fraction=0.2, progress=False)
    return prepared


def held_out_first(data: Path, count: int) -> tuple[torch.Tensor, int]:
    """The prepared faces for the attack suite, ``[evaluated; attacker's]``, and how many are
    evaluated: up to ``count`` held-out (``val``) faces, then every training face for the attacker
    (:func:`privlens.attacks.job.split_faces` keeps the first ones for evaluation)."""
    from privlens.train.data import LandmarkFaces

    def images(split: str) -> torch.Tensor:
        faces = LandmarkFaces(data, split, DEMO_SIZE)
        return torch.stack([faces[i]["image"] for i in range(len(faces))])

    held_out, train = images("val"), images("train")
    evaluated = min(count, held_out.shape[0])
    return torch.cat([held_out[:evaluated], train]), evaluated


@torch.no_grad()
def capture_gallery(out: Path, lenses: dict[str, str], scene: torch.Tensor, face: torch.Tensor):
    """Captures of the astronaut and of a face through every lens; PSF plots; comparison figure."""
    scores, columns, face_columns = {}, {"scene": scene}, {"scene": face}
    for name, lens in lenses.items():
        camera = make_camera(lens, scene.shape[-1]).eval()
        capture = camera(scene[None]).image[0]
        save_image(capture, out / "captures" / f"{name}.png")
        plot_lens(camera, out / "psf" / f"{name}.png", title=f"lens: {name}")
        if lens in LENS_PRESETS:
            save_lens(camera, out / "lenses" / f"{name}.safetensors", {"preset": name})
        scores[name] = float(psnr(capture, scene))
        columns[name] = capture
        face_columns[name] = make_camera(lens, face.shape[-1]).eval()(face[None]).image[0]
    captions = {name: f"PSNR {value:.1f} dB" for name, value in scores.items()}
    rows = [columns, face_columns]
    comparison = image_table(rows, out / "comparison.png", [captions, {}], "captures of the same scenes")
    return scores, comparison


def anonymization_figure(out: Path, run: Path, data: Path, backend: str, count: int = 4) -> Path:
    """source | capture | U's heatmap | new faces, for a few validation faces (warp or GAN)."""
    from privlens.anonymize.models import load_camera, load_generator, load_heatmap, resolve_models
    from privlens.anonymize.pipeline import Anonymizer, GanBackend, WarpBackend, heatmap_image
    from privlens.anonymize.references import Slot, load_references
    from privlens.eval.job import load_sources

    sources, _, _, _ = load_sources(data, DEMO_SIZE, count)
    references = load_references(data / "train", DEMO_SIZE).references[:3]
    paths = resolve_models(run, None, None, None if backend == "gan" else "warp")
    if paths.generator is None:
        chosen = WarpBackend(references)
    else:
        chosen = GanBackend(load_generator(paths.generator), references)
    anonymizer = Anonymizer(load_camera(paths.lens, DEMO_SIZE), load_heatmap(paths.heatmap), chosen)
    plans = [
        [Slot(reference=j, domain=0 if backend == "gan" else None) for j in range(len(references))]
    ] * len(sources)
    batch = anonymizer.run(sources, plans)
    rows = []
    for i in range(len(sources)):
        row = {
            "source": sources[i],
            "capture": batch.captures[i].cpu(),
            "U(capture)": heatmap_image(batch.heatmaps[i].cpu(), batch.landmarks[i].cpu(), DEMO_SIZE),
        }
        for j in range(len(references)):
            row[f"new face {j + 1}"] = batch.faces[i, j].cpu()
        rows.append(row)
    return image_table(rows, out / "anonymized.png", None, f"anonymisation with the learned lens ({backend})")


def run_demo(
    out_dir: str | Path = "runs/demo",
    fast: bool = False,
    gan_run: Path | None = None,
    progress: Callable[[str], None] | None = None,
    train_stage1: bool = False,
) -> DemoResult:
    """Run steps 1-7 of the module docstring into ``out_dir`` (re-running resumes the training).

    ``train_stage1``: train a tiny Stage I here instead of using the shipped lens and U."""
    from privlens.eval.job import run_evaluation
    from privlens.eval.pairs import EvalOptions
    from privlens.outputs import check_output_dir
    from privlens.report.demo_report import write_demo_report

    scale = FAST if fast else FULL
    say = progress or (lambda message: None)
    out = check_output_dir(out_dir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    say("preparing the embedded faces (dlib landmarks)")
    data = prepare_demo_faces(out, scale.faces)
    lap("prepare faces")
    stage1: dict[str, dict] = {}
    if train_stage1:
        say(f"Stage I: pretraining U on clean faces ({scale.heatmap_steps} steps)")
        heatmap = _stage1("heatmap", data, out / "stage1-heatmap", scale.heatmap_steps)
        clean_u = heatmap.run_dir / "heatmap_net.safetensors"
        say(f"Stage I: learning the lens with U ({scale.optics_steps} steps)")
        optics = _stage1(
            "optics", data, out / "stage1-optics", scale.optics_steps, f"net.pretrained={clean_u}"
        )
        learned_run = optics.run_dir
        stage1 |= {"heatmap": heatmap.summary, "optics": optics.summary}
    else:
        from privlens.models import shipped_path

        say("Stage I: the shipped lens and U (privlens.models, trained by `make models`)")
        shipped = shipped_stage1(out)
        learned_run, clean_u = shipped.run_dir, shipped_path("heatmap-clean")
        stage1["shipped"] = shipped.summary
    say(f"Stage I: the low-resolution baseline ({scale.lowres_steps} steps)")
    # cosine decay: held-out NME 5.66 % against 6.30 % at a constant lr (3 seeds each, N = 20; RESULTS)
    lowres = _stage1(
        "lowres",
        data,
        out / "stage1-lowres",
        scale.lowres_steps,
        f"net.pretrained={clean_u}",
        "train.lr_schedule=cosine",
    )
    stage1["lowres"] = lowres.summary
    lap("stage I")

    lenses = {name: name for name in LENS_PRESETS} | {"learned": str(learned_run / "lens.safetensors")}
    for name, model in ({} if train_stage1 else SHIPPED_EXTRA_LENSES).items():
        if (path := shipped_lens_file(model)) is not None:
            lenses[name] = path
    say("capturing through every lens")
    faces = lfw_faces()[:1]
    face = torch.nn.functional.interpolate(faces, size=(DEMO_SIZE, DEMO_SIZE), mode="area")[0].clamp(0, 1)
    scores, comparison = capture_gallery(out, lenses, astronaut(256 if not fast else 64), face)
    lap("captures")

    say("attacking every lens")
    settings = AttackSettings(
        rl_iterations=scale.rl_iterations,
        inversion=InversionTraining(steps=scale.inversion_steps, width=8, depth=3),
        hybrid=False,  # rl+inversion would add about a minute per lens; `privlens attack` runs it
    )
    attack_faces, evaluated = held_out_first(data, scale.attack_faces)
    attacks = run_attack_job(
        lenses,
        out / "attacks",
        attack_faces,
        evaluated,
        settings,
        OriginalBoxIdentity(),
        say,
    )
    lap("attacks")

    if gan_run is not None and (Path(gan_run) / "generator.safetensors").is_file():
        backend, reason, run_for_faces = (
            "gan",
            f"the Stage II generator of {gan_run} was given",
            Path(gan_run),
        )
    else:
        backend, run_for_faces = "warp", learned_run
        reason = (
            "the training-free warp backend: on 20 held-out faces it moves 18-19 of 19 faces more than 0.6 "
            "from their source's identity, the shipped CPU-trained generator 12 of 19 (figures in the "
            "section 'Stage II generator on held-out faces'); privlens demo --gan-run DIR uses a Stage II "
            "run instead"
        )
    say(f"anonymising with the {backend} backend")
    anonymized = anonymization_figure(out, run_for_faces, data, backend)
    lap("anonymise")

    say("evaluation protocol")
    runs = [run_for_faces, lowres.run_dir]
    evaluation = run_evaluation(
        runs,
        data,
        out / "evaluation",
        DEMO_SIZE,
        None,
        scale.references_per_source,
        0,
        scale.eval_sources,
        True,
        backend == "gan",
        EvalOptions(identity=("dlib",), fid=False, lpips=False, progress=False, analysis_px=160),
        say,
    )
    lap("evaluation")

    summary = {
        "psnr_db": scores,
        "backend": backend,
        "backend_reason": reason,
        "seconds": seconds,
        "scale": scale.__dict__ | {"rl_iterations": list(scale.rl_iterations)},
        "stage1": stage1,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    report = write_demo_report(out, anonymized)
    lap("report")
    atomic_write_text(out / "summary.json", json.dumps(summary | {"seconds": seconds}, indent=2, default=str))
    return DemoResult(out, comparison, scores, attacks, evaluation.rows, backend, reason, report, seconds)
