"""``privlens attack``: how much identity do captures leak to the attack suite?"""

from __future__ import annotations

from pathlib import Path

import typer

from privlens.commands.common import StepProgress, check_seed, fail, say, skipped


def attack(
    lens: list[str] = typer.Option(
        [], "--lens", "-l", help="Extra lens to attack (a lens file or preset name); repeatable."
    ),
    presets: bool = typer.Option(True, help="Also attack open, defocus, lowres and prototype."),
    data: Path | None = typer.Option(
        None, help="Folder of face images (aligned crops); default: the embedded LFW faces."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for tables and figures."),
    attacker_data: Path | None = typer.Option(
        None,
        help="The attacker's own face images (never the evaluated ones). Default: with --data, the "
        "embedded LFW faces; without it, the embedded faces not evaluated.",
    ),
    size: int = typer.Option(64, help="Image side in pixels (divisible by 8)."),
    evaluation_count: int = typer.Option(20, help="Faces evaluated (the first ones)."),
    inversion_steps: int = typer.Option(
        6000, help="Most training steps of the learned inversion; it stops earlier when converged (0: skip)."
    ),
    inversion_width: int = typer.Option(16, help="U-Net width of the learned inversion."),
    rl_max_iterations: int = typer.Option(
        3000, help="Cap of Richardson–Lucy; it stops when the attacker's validation PSNR stops rising."
    ),
    sensor_noise: bool = typer.Option(
        True, help="Photon shot and read noise of the physical sensor model (captures are always quantised)."
    ),
    full_scale_e: float | None = typer.Option(
        None, help="Photo-electrons at full scale per sensor pixel (default: the lens's, 4000)."
    ),
    read_noise_e: float | None = typer.Option(
        None, help="Read noise, electrons RMS (default: the lens's, 2.5)."
    ),
    bit_depth: int | None = typer.Option(
        None, help="ADC bits of the stored captures (default: the lens's, 10; 8 for an 8-bit file)."
    ),
    read_noise: float | None = typer.Option(None, hidden=True),
    quantise: bool = typer.Option(True, hidden=True),
    blind: bool = typer.Option(True, help="Also run the blind attacker (PSF from a calibration target)."),
    hybrid: bool = typer.Option(
        True,
        help="Also run the hybrids rl+inversion and tikhonov+inversion: Richardson–Lucy or regularised "
        "least squares, then a U-Net trained on the attacker's own restorations.",
    ),
    identity: bool = typer.Option(True, help="Measure dlib identity distance and re-identification."),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Run only these attacks (repeatable; names as in the tables, e.g. tikhonov+inversion); "
        "the raw capture ('none') is always scored.",
    ),
    landmarks: str | None = typer.Option(
        None,
        "--landmarks",
        help="Also the 'landmarks' attack: this U (a file, run folder or shipped U's name, e.g. "
        "heatmap-stop-video) reads 68 landmarks on each capture, matched in shape space against the "
        "photos' own. Give a U that never trained on the evaluated faces.",
    ),
    gallery: Path | None = typer.Option(
        None,
        "--gallery",
        help="Identify against other photos of the evaluated people instead of their captured photos: "
        "a folder with one subfolder per person (GALLERY/PERSON/*.png); --data must then hold one "
        "subfolder per person too, named alike.",
    ),
    seed: int = typer.Option(
        0,
        help="Seed of the attacker: the split of its faces, every noise draw (the evaluated captures' "
        "too) and the networks' initialisation. Rerun with other seeds to see the spread.",
    ),
) -> None:
    """Attack captures with Wiener, Richardson–Lucy, bicubic (low-res) and a learned inversion."""
    from privlens.attacks.capture import CaptureNoise
    from privlens.attacks.identity import OriginalBoxIdentity
    from privlens.attacks.job import DEFAULT_LENSES, embedded_faces, load_face_folder, run_attack_job
    from privlens.attacks.suite import ATTACK_NAMES, AttackSettings, full_inversion
    from privlens.data.images import ImageFileError
    from privlens.optics.lensfile import LensFileError
    from privlens.report.tables import to_markdown

    lenses = (list(DEFAULT_LENSES) if presets else []) + [
        item for item in lens if item not in DEFAULT_LENSES or not presets
    ]
    if not lenses:
        fail("no lens to attack: give --lens or keep --presets")
    if size % 8:
        fail(f"--size must be divisible by 8, got {size}")
    if read_noise is not None:
        fail(
            "--read-noise (additive noise in image units) was replaced by the physical sensor model: "
            "use --full-scale-e, --read-noise-e, --bit-depth or --no-sensor-noise"
        )
    if not quantise:
        fail("--no-quantise is gone: captures are always quantised (to --bit-depth bits)")
    if rl_max_iterations < 1 or inversion_steps < 0:
        fail("--inversion-steps must be >= 0, --rl-max-iterations >= 1")
    unknown = sorted(set(only) - set(ATTACK_NAMES))
    if unknown:
        fail(f"unknown attack {', '.join(unknown)} in --only; known: {', '.join(ATTACK_NAMES)}")
    check_seed(seed)
    if "landmarks" in only and landmarks is None:
        fail("--only landmarks needs --landmarks U (the network that reads the captures' landmarks)")
    if landmarks is not None and not identity:
        fail("--landmarks needs dlib (the photos' landmarks): drop --no-identity")
    if gallery is not None and (data is None or not identity):
        fail("--gallery needs --data (one subfolder per person) and dlib identity (drop --no-identity)")
    from privlens.optics.config import CameraConfig

    try:
        noise = CaptureNoise(sensor_noise, full_scale_e, read_noise_e, bit_depth)
        noise.config_for(CameraConfig())
    except ValueError as error:
        fail(f"sensor noise: {error}")
    read_landmarks = None if landmarks is None else _landmark_reader(landmarks, size)
    from privlens.outputs import check_output_dir, check_size

    check_size(size)
    check_output_dir(out, [folder for folder in (data, attacker_data, gallery) if folder is not None])
    try:
        if data is None:
            faces, skipped_files, names = embedded_faces(size), [], None
        else:
            faces, skipped_files, names = load_face_folder(data, size)
        own = None
        if attacker_data is not None:
            own, own_skipped, _ = load_face_folder(attacker_data, size)
            skipped_files += own_skipped
        elif data is not None:
            own = embedded_faces(size)
    except ImageFileError as error:
        fail(str(error))
    enrolled = None
    if gallery is not None:
        try:
            photos, gallery_skipped, gallery_names = load_face_folder(gallery, size)
        except ImageFileError as error:
            fail(f"--gallery: {error}")
        skipped_files += gallery_skipped
        enrolled = _enrolled(photos, gallery_names, names, evaluation_count)
    for path, reason in skipped_files:
        skipped(path, reason)
    inversion = full_inversion(inversion_steps, inversion_width, seed) if inversion_steps else None
    settings = AttackSettings(
        rl_max_iterations=rl_max_iterations,
        inversion=inversion,
        noise=noise,
        blind=blind,
        hybrid=hybrid,
        seed=seed,
        attacks=("none", *only, *(["landmarks"] if landmarks else [])) if only else None,
    )
    try:
        with StepProgress("attacking") as step:
            report = run_attack_job(
                lenses,
                out,
                faces,
                evaluation_count,
                settings,
                OriginalBoxIdentity() if identity else None,
                progress=step,
                attacker=own,
                names=names,
                landmarks=read_landmarks,
                landmarks_source=landmarks or "",
                gallery=enrolled,
            )
    except (ValueError, LensFileError) as error:
        fail(str(error))
    say(to_markdown(report.rows))
    for path in report.tables + report.figures:
        say(f"wrote {path}")


def _landmark_reader(landmarks: str, size: int):
    """``images -> [N, 68, 2]`` from U given as ``--landmarks`` (refused: another image size)."""
    from privlens.commands.eval_heatmap import heatmap_path
    from privlens.eval.heatmap import predict_landmarks
    from privlens.models import load_heatmap_model
    from privlens.models.errors import ModelFileError

    try:
        model = load_heatmap_model(heatmap_path(landmarks, "--landmarks"))
    except ModelFileError as error:
        fail(f"--landmarks: {error}")
    if model.image_size not in (None, size):
        fail(f"--landmarks: U was trained at {model.image_size} px, the attack runs at --size {size}")
    return lambda images: predict_landmarks(model.net, images)


def _person(name: str, option: str) -> str:
    """The person a face file shows: the first folder of its path below the folder given."""
    if "/" not in name:
        fail(f"with --gallery, {option} must hold one subfolder per person; {name!r} is not in one")
    return name.split("/", 1)[0]


def _enrolled(photos, gallery_names: list[str], names: list[str], evaluation_count: int):
    """The :class:`EnrolledGallery` of ``--gallery`` for the first ``evaluation_count`` faces."""
    from privlens.attacks.suite import EnrolledGallery

    try:
        return EnrolledGallery(
            photos,
            [_person(name, "--gallery") for name in gallery_names],
            [_person(name, "--data") for name in names[:evaluation_count]],
        )
    except ValueError as error:
        fail(f"--gallery: {error}")
