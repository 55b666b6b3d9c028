"""The ``privlens attack`` job: several lenses, one face set, tables and figures on disk."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from privlens.attacks.suite import (
    SAME_PERSON_THRESHOLD,
    AttackSettings,
    EnrolledGallery,
    IdentityDistance,
    LandmarkReader,
    LensAttackResult,
    attack_lens,
    check_disjoint,
)
from privlens.data.images import ImageFileError, iter_images, list_images
from privlens.files import atomic_write_text
from privlens.optics.presets import make_camera
from privlens.report.figures import image_table
from privlens.report.tables import to_csv, write_tables

DEFAULT_LENSES = ("open", "defocus", "lowres", "prototype")
COLUMNS = (
    "lens",
    "attack",
    "choice",
    "faces",
    "psnr",
    "attacker_psnr",
    "ssim",
    "chance_rank1",
    "rank1",
    "rank1_lo",
    "rank1_hi",
    "tar@far0.01",
    "tar@far0.001",
    "impostor_pairs",
    "identity_distance",
    "reidentified",
    "reid_lo",
    "reid_hi",
    "measured_faces",
)

FACE_COLUMNS = ("lens", "attack", "face", "psnr", "ssim", "identity_distance", "rank1_hit", "reidentified")


@dataclass
class AttackReport:
    rows: list[dict]
    tables: list[Path]
    figures: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_face_folder(folder: str | Path, size: int) -> tuple[torch.Tensor, list[tuple[Path, str]], list[str]]:
    """Every readable image below ``folder`` at ``size`` px (centre crop), the skipped files, and
    the images' names (their paths below ``folder``, ``/``-separated; a single image file: its
    name), in the same order."""
    images, skipped, names = [], [], []
    folder = Path(folder)
    single = folder.is_file()
    for path, image in iter_images(list_images(folder), size):
        if isinstance(image, ImageFileError):
            skipped.append((path, str(image)))
        else:
            images.append(image)
            names.append(path.name if single else path.relative_to(folder).as_posix())
    if not images:
        raise ImageFileError(f"no readable images in {folder}")
    return torch.stack(images), skipped, names


def embedded_faces(size: int) -> torch.Tensor:
    """The embedded LFW faces (``privlens.data.samples.lfw_faces``) at ``size`` px."""
    from privlens.data.samples import lfw_faces

    return F.interpolate(lfw_faces(), size=(size, size), mode="area").clamp(0, 1)


def split_faces(faces: torch.Tensor, evaluation_count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(attacker, evaluation)``: the first ``evaluation_count`` faces are evaluated, the rest
    belong to the attacker. Both must be non-empty."""
    if not 0 < evaluation_count < faces.shape[0]:
        raise ValueError(
            f"need more than {evaluation_count} faces to keep {evaluation_count} for evaluation and "
            f"some for the attacker, got {faces.shape[0]}"
        )
    return faces[evaluation_count:], faces[:evaluation_count]


def result_rows(result: LensAttackResult) -> list[dict]:
    """One row per attack: its scores, the attacker's choice as a label, and ``attacker_psnr``,
    the PSNR (dB) the attacker measured for that choice on its own held-out faces (NaN for the raw
    capture)."""
    rows = []
    for attack, scores in result.scores.items():
        choice = result.choices.get(attack)
        label, attacker_psnr = "", float("nan")
        if attack == "landmarks":  # its choice is a shape factor, and it has no PSNR
            label = "U on the capture" + ("" if choice is None else f", alpha={choice.value:g}")
        elif choice is not None:
            if attack in ("wiener", "blind-wiener"):
                label = f"lambda={choice.value:.1e}"
            elif attack == "tikhonov":
                label = f"lambda={choice.value:.1e}, {choice.iterations} iterations"
            elif attack == "wiener-mmse":
                label = f"noise x{choice.value:g}"
            else:
                trained = attack.endswith("inversion")  # network steps, not RL iterations
                label = f"{'steps' if trained else 'iterations'}={int(choice.value)}"
            attacker_psnr = choice.candidates.get(choice.value, float("nan"))
        row = {"lens": result.lens, "attack": attack, "choice": label, **scores}
        # the attacker's own held-out PSNR for its choice: far above ``psnr`` means the recovery
        # of the evaluated faces is not what the attacker validated
        row["attacker_psnr"] = attacker_psnr
        rows.append(row)
    return rows


def face_rows(result: LensAttackResult, names: Sequence[str]) -> list[dict]:
    """One row per (attack, evaluated face): ``face`` (``names[i]``), its PSNR (dB), SSIM, identity
    distance, ``rank1_hit`` (1 when its recovery's nearest gallery original is its own) and
    ``reidentified`` (1 when the distance is below 0.6); NaN where not measured (no dlib face)."""
    rows = []
    for attack, values in result.per_image.items():
        if len(values["psnr"]) != len(names):
            raise ValueError(f"{len(names)} face names for {len(values['psnr'])} evaluated faces")
        for i, name in enumerate(names):
            distance = float(values["identity_distance"][i]) if "identity_distance" in values else math.nan
            hit = float(values["rank1_hit"][i]) if "rank1_hit" in values else math.nan
            reidentified = math.nan if math.isnan(distance) else float(distance < SAME_PERSON_THRESHOLD)
            rows.append(
                {
                    "lens": result.lens,
                    "attack": attack,
                    "face": name,
                    "psnr": float(values["psnr"][i]),
                    "ssim": float(values["ssim"][i]),
                    "identity_distance": distance,
                    "rank1_hit": hit,
                    "reidentified": reidentified,
                }
            )
    return rows


def _caption(result: LensAttackResult, attack: str, index: int) -> str:
    values = result.per_image[attack]
    text = f"PSNR {float(values['psnr'][index]):.1f} dB"
    if "identity_distance" in values:
        distance = float(values["identity_distance"][index])
        text += "\nID dist n/a" if distance != distance else f"\nID dist {distance:.2f}"
    return text


def lens_figure(result: LensAttackResult, originals: torch.Tensor, path: Path, examples: int = 4) -> Path:
    """original | capture | each recovery, for the first ``examples`` evaluation faces."""
    rows, captions = [], []
    for i in range(min(examples, originals.shape[0])):
        row = {"original": originals[i]}
        caption = {}
        for attack, images in result.recovered.items():
            column = "capture" if attack == "none" else attack
            row[column] = images[i]
            caption[column] = _caption(result, attack, i)
        rows.append(row)
        captions.append(caption)
    title = f"lens {result.lens}: what each attack recovers (ID dist < {SAME_PERSON_THRESHOLD} = same person)"
    return image_table(rows, path, captions, title)


def run_attack_job(
    lenses: list[str] | dict[str, str],
    out_dir: str | Path,
    faces: torch.Tensor,
    evaluation_count: int,
    settings: AttackSettings,
    identity: IdentityDistance | None,
    progress: Callable[[str], None] | None = None,
    attacker: torch.Tensor | None = None,
    names: Sequence[str] | None = None,
    landmarks: LandmarkReader | None = None,
    landmarks_source: str = "",
    gallery: EnrolledGallery | None = None,
) -> AttackReport:
    """Attack every lens; write ``attacks.{md,csv,json}``, ``faces.csv`` (:func:`face_rows`) and
    ``attack_<lens>.png`` to ``out_dir``.

    ``lenses``: preset names or lens files, or a mapping display name -> lens. ``attacker``: the
    attacker's own faces; then the first ``evaluation_count`` of ``faces`` are evaluated (and must
    not be among the attacker's); without it the rest of ``faces`` belongs to the attacker.
    ``names``: one per face in ``faces`` (default ``face_0000``, ...), for ``faces.csv``.
    ``landmarks``: U for the ``landmarks`` attack on every lens (``landmarks_source`` names it in
    the protocol); it must not have trained on the evaluated faces. ``gallery``: other photos of
    the evaluated people to identify against (its ``evaluated_labels`` name the people of the
    first ``evaluation_count`` faces); it must not hold an evaluated photo.
    """
    out_dir = Path(out_dir)
    if names is None:
        names = [f"face_{i:04d}" for i in range(faces.shape[0])]
    if len(names) != faces.shape[0]:
        raise ValueError(f"{len(names)} face names for {faces.shape[0]} faces")
    if attacker is None:
        attacker, evaluation = split_faces(faces, evaluation_count)
    else:
        evaluation = faces[:evaluation_count]
    evaluated_names = list(names[: evaluation.shape[0]])
    if gallery is not None:
        if len(gallery.evaluated_labels) != evaluation.shape[0]:
            raise ValueError(
                f"{len(gallery.evaluated_labels)} people named for {evaluation.shape[0]} evaluated faces"
            )
        check_disjoint(
            gallery.photos,
            evaluation,
            others="the gallery's photos",
            advice="the gallery must hold other photos of the same people",
        )
    size = faces.shape[-1]
    rows, figures, per_face = [], [], []
    choices, noise = {}, {}
    if not isinstance(lenses, dict):
        lenses = {(lens if lens in DEFAULT_LENSES else Path(lens).stem): lens for lens in lenses}
    for name, lens in lenses.items():
        camera = make_camera(lens, size)
        result = attack_lens(
            name, camera, attacker, evaluation, settings, identity, progress, landmarks, gallery
        )
        noise[name] = settings.noise.describe(camera)
        rows.extend(result_rows(result))
        per_face.extend(face_rows(result, evaluated_names))
        choices[name] = {
            k: {
                "value": c.value,
                "note": c.note,
                # what the attacker measured on its own held-out faces per candidate: PSNR (dB),
                # except the landmarks attack's mean genuine rank
                ("held_out_mean_rank" if k == "landmarks" else "held_out_psnr"): {
                    str(a): v for a, v in c.candidates.items()
                },
            }
            for k, c in result.choices.items()
        }
        figures.append(lens_figure(result, evaluation, out_dir / f"attack_{name}.png"))
    extra = {
        "protocol": {
            "faces": int(faces.shape[0]),
            "attacker_faces": int(attacker.shape[0]),
            "evaluation_faces": int(evaluation.shape[0]),
            "image_size": int(size),
            "sensor_noise": noise,
            "attacker_validation_fraction": settings.validation_fraction,
            "seed": settings.seed,
            "attacks": list(settings.attacks) if settings.attacks is not None else "all",
            "rank1_chance": 1
            / (len(set(gallery.labels)) if gallery is not None else int(evaluation.shape[0])),
            "gallery": (
                f"{len(gallery.photos)} other photos of {len(set(gallery.labels))} people: rank-1 = a "
                "photo of the evaluated face's own person is nearest (chance 1 / people with a dlib face)"
                if gallery is not None
                else "the evaluated photos themselves (rank-1 = the recovery is nearest to its own photo)"
            ),
            "note": "faces = evaluated faces with a dlib face in the original (N of every figure); "
            "*_lo/*_hi = bootstrap 95 % interval; TAR threshold from the attacker's own faces",
            "same_person_threshold": SAME_PERSON_THRESHOLD,
            "identity_backend": "dlib" if identity is not None else None,
            "landmarks": (
                f"U = {landmarks_source}: its landmarks on each capture against dlib's on the photos, "
                "shape space; valid only if U never trained on the evaluated faces"
                if landmarks is not None
                else None
            ),
        },
        "attacker_choices": choices,
    }
    ordered = [{c: row.get(c, float("nan")) for c in COLUMNS} for row in rows]
    tables = write_tables(ordered, out_dir / "attacks", extra)
    tables.append(atomic_write_text(out_dir / "faces.csv", to_csv(per_face, FACE_COLUMNS)))
    return AttackReport(ordered, tables, figures)
