"""The ``privlens`` command. Thin: it parses options and calls library functions."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from privlens.commands.anonymize import anonymize as anonymize_command
from privlens.commands.attack import attack as attack_command
from privlens.commands.common import (
    PrivlensGroup,
    check_seed,
    console,
    err_console,
    fail,
    info,
    say,
    set_verbosity,
    warn,
)
from privlens.commands.data import data_app
from privlens.commands.eval import eval_app
from privlens.commands.evaluate import evaluate as evaluate_command
from privlens.commands.evaluate import sweep as sweep_command
from privlens.commands.train import app as train_app
from privlens.commands.train_gan import train_gan
from privlens.optics.presets import DEFAULT_DEFOCUS_UM, DEFAULT_PROTOTYPE_SCALE_UM

app = typer.Typer(
    cls=PrivlensGroup,
    help="privlens: privacy-preserving optics for face de-identification.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
lens_app = typer.Typer(help="Lens files and the deformable-mirror bridge.", no_args_is_help=True)
app.add_typer(lens_app, name="lens")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
train_app.command("gan")(train_gan)
app.command("attack")(attack_command)
app.command("anonymize")(anonymize_command)
app.command("evaluate")(evaluate_command)
app.command("sweep")(sweep_command)
__all__ = ["app", "console", "err_console", "fail"]


def _print_version(value: bool) -> None:
    if value:
        from privlens import __version__

        say(f"privlens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only results, warnings and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print details of each step."),
) -> None:
    """privlens: privacy-preserving optics for face de-identification.

    Errors in user input end with one line, `error: ...`, and exit status 2.
    """
    if quiet and verbose:
        fail("--quiet and --verbose exclude each other")
    set_verbosity(-1 if quiet else (1 if verbose else 0))


class ConvolutionChoice(str, Enum):
    linear = "linear"
    circular = "circular"


class ExposureChoice(str, Enum):
    same = "same"
    lengthened = "lengthened"


class ImportFormat(str, Enum):
    wavefront = "wavefront"
    mirror = "mirror"


class IndexConvention(str, Enum):
    noll = "noll"
    ansi = "ansi"
    thorlabs = "thorlabs"


LENS_HELP = "open, defocus, lowres, prototype, a lens file (.safetensors) or a run folder."


def build_camera(
    lens: str,
    size: int,
    defocus_um: float,
    prototype_scale_um: float,
    convolution: ConvolutionChoice | None = None,
    sensor: dict | None = None,
):
    """``sensor``: physical settings of :class:`privlens.optics.CameraConfig` to override (the
    sensor's ``sensor_noise``, ``full_scale_e``, ``read_noise_e``, ``bit_depth``; a preset's
    ``aperture_radius_m``); ``None`` values keep the lens's."""
    import math

    from privlens.optics.presets import make_camera

    for option, value in (
        ("--defocus-um", defocus_um),
        ("--prototype-scale-um", prototype_scale_um),
    ):
        if value is not None and not math.isfinite(value):
            fail(f"{option} must be a finite number, got {value}")
    settings = {k: v for k, v in (sensor or {}).items() if v is not None}
    if convolution is not None:
        settings["convolution"] = convolution.value
    try:
        return make_camera(
            lens, size, defocus_um=defocus_um, prototype_scale_um=prototype_scale_um, **settings
        )
    except ValueError as error:
        fail(str(error))


OVERWRITE_HELP = "Replace existing output files (never an input)."


def _camera_for_output(lens: str, size: int, defocus_um: float, prototype_scale_um: float, *rest):
    """Build the camera after checking ``--size`` (bounded: memory grows with its square)."""
    from privlens.outputs import check_size

    check_size(size)
    return build_camera(lens, size, defocus_um, prototype_scale_um, *rest)


@app.command()
def capture(
    source: Path = typer.Argument(..., help="An image file or a folder of images."),
    lens: str = typer.Option("prototype", "--lens", "-l", help=LENS_HELP),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for the PNG captures (not the input folder nor inside it)."
    ),
    size: int = typer.Option(256, help="Images are centre-cropped and resized to SIZE x SIZE (max 2048)."),
    defocus_um: float = typer.Option(DEFAULT_DEFOCUS_UM, help="Noll-4 RMS um of the defocus lens."),
    prototype_scale_um: float = typer.Option(
        DEFAULT_PROTOTYPE_SCALE_UM, help="um per published unit of the prototype coefficients."
    ),
    convolution: ConvolutionChoice = typer.Option(ConvolutionChoice.linear, help="Border model."),
    sensor_noise: bool = typer.Option(
        True,
        help="Store captures as the physical sensor does: shot and read noise, ADC rounding, at the "
        "lens file's light (as `privlens anonymize` does); --no-sensor-noise: the noise-free optical image.",
    ),
    seed: int = typer.Option(0, help="Seed of the sensor noise: the same seed gives the same captures."),
    full_scale_e: float | None = typer.Option(
        None, help="With --sensor-noise: photo-electrons at full scale per sensor pixel (default 4000)."
    ),
    read_noise_e: float | None = typer.Option(
        None, help="With --sensor-noise: read noise, e- RMS (default 2.5)."
    ),
    bit_depth: int | None = typer.Option(None, help="With --sensor-noise: ADC bits (default 10)."),
    noise_sigma: float | None = typer.Option(None, hidden=True),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Capture images through a simulated privacy camera (writes captures only, never the input)."""
    from privlens.anonymize.capture import capture_files
    from privlens.commands.common import debug, progress, skipped
    from privlens.outputs import identifiable_warning

    if noise_sigma is not None:
        fail(
            "--noise-sigma (additive Gaussian noise in image units) was replaced by the physical sensor "
            "model: use --sensor-noise [--full-scale-e E] [--read-noise-e E] [--bit-depth B]"
        )
    sensor = {"full_scale_e": full_scale_e, "read_noise_e": read_noise_e, "bit_depth": bit_depth}
    sensor["sensor_noise"] = sensor_noise
    camera = _camera_for_output(lens, size, defocus_um, prototype_scale_um, convolution, sensor)
    warning = identifiable_warning(lens, camera)
    if warning:
        warn(warning)
    check_seed(seed)
    report = capture_files(
        source,
        camera,
        out,
        overwrite=overwrite,
        seed=seed,
        track=lambda items, total: progress(items, total, "capturing"),
    )
    if source.is_file() and report.skipped:  # the one input given is unreadable: a user error
        fail(report.skipped[0][1])
    for path, reason in report.skipped:
        skipped(path, reason)
    for path in report.written:
        debug(f"wrote {path}")
    say(f"wrote {len(report.written)} capture(s) to {out}")
    if not report.written:
        raise typer.Exit(code=1)


@app.command()
def psf(
    lens: str = typer.Option("prototype", "--lens", "-l", help=LENS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file for the figure (.png)."),
    size: int = typer.Option(256, help="Image size the PSF is sampled for (max 2048)."),
    log: bool = typer.Option(False, "--log", help="Show log10 of the PSFs."),
    defocus_um: float = typer.Option(DEFAULT_DEFOCUS_UM, help="Noll-4 RMS um of the defocus lens."),
    prototype_scale_um: float = typer.Option(
        DEFAULT_PROTOTYPE_SCALE_UM, help="um per published unit of the prototype coefficients."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Plot a lens's phase mask and its R, G, B point-spread functions."""
    from privlens.outputs import check_output_file
    from privlens.report.figures import plot_lens

    check_output_file(out, (".png",), overwrite)
    camera = _camera_for_output(lens, size, defocus_um, prototype_scale_um)
    path = plot_lens(camera, out, log_scale=log, title=f"lens: {lens}")
    say(f"wrote {path}")


@lens_app.command("create")
def lens_create(
    preset: str = typer.Argument(..., help="open, defocus or prototype."),
    out: Path = typer.Option(..., "--out", "-o", help="Lens file to write (.safetensors)."),
    defocus_um: float = typer.Option(DEFAULT_DEFOCUS_UM, help="Noll-4 RMS um of the defocus lens."),
    prototype_scale_um: float = typer.Option(
        DEFAULT_PROTOTYPE_SCALE_UM, help="um per published unit of the prototype coefficients."
    ),
    aperture_radius_mm: float | None = typer.Option(
        None,
        help="Radius of the aperture stop in mm (default: the paper's 2 mm, f/12.5). A smaller stop "
        "cuts the optical transfer function off at 2 NA / wavelength: detail beyond it is not "
        "recorded at all; `privlens lens info` prints the light it costs.",
    ),
    exposure: ExposureChoice | None = typer.Option(
        None,
        help="With a stop: 'same' (default) keeps the paper camera's exposure time, so the sensor collects "
        "(12.5 / f-number)^2 of its light (full_scale_e divided by that, more shot noise); "
        "'lengthened' keeps full_scale_e, as if the exposure were lengthened to make up for it "
        "(816 x for 0.07 mm: seconds, not a video frame).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Write a preset lens as a lens file (e.g. to export it to a mirror)."""
    from privlens.optics.lensfile import save_lens
    from privlens.outputs import check_output_file

    if preset not in ("open", "defocus", "prototype"):
        fail(f"preset must be open, defocus or prototype, got {preset!r}")
    if exposure is not None and aperture_radius_mm is None:
        fail("--exposure sets the light of a stopped-down lens: give --aperture-radius-mm too")
    check_output_file(out, (".safetensors",), overwrite)
    settings, provenance = {}, {"preset": preset}
    if aperture_radius_mm is not None:
        settings["aperture_radius_m"] = aperture_radius_mm * 1e-3
        provenance["aperture_radius_mm"] = aperture_radius_mm
    camera = build_camera(preset, 256, defocus_um, prototype_scale_um, sensor=settings)
    if aperture_radius_mm is not None:
        exposure = exposure or ExposureChoice.same
        provenance["exposure"] = exposure.value
        if exposure is ExposureChoice.same:
            settings["full_scale_e"] = camera.config.full_scale_e / camera.config.exposure_factor
            camera = build_camera(preset, 256, defocus_um, prototype_scale_um, sensor=settings)
    save_lens(camera, out, provenance)
    say(f"wrote {out}")


@lens_app.command("info")
def lens_info(path: Path = typer.Argument(..., help="A lens file.")) -> None:
    """Print a lens file's coefficients and camera settings."""
    from privlens.optics.lensfile import LensFileError, read_lens
    from privlens.optics.zernike import term_names

    try:
        coeffs, config, provenance = read_lens(path)
    except LensFileError as error:
        fail(str(error))
    table = Table(title=escape(f"{path} (Noll coefficients, um RMS wavefront)"))
    table.add_column("term")
    table.add_column("beta (um)", justify="right")
    for name, value in zip(term_names(len(coeffs)), coeffs.tolist(), strict=True):
        table.add_row(name, f"{value:+.4f}")
    console.print(table)
    console.print(
        f"aperture radius {config.aperture_radius_m * 1e3:g} mm, f/{config.f_number:.3g}: "
        f"{config.exposure_factor:.3g} x the exposure of the paper's f/12.5 camera for the same light"
    )
    console.print(
        f"sensor: {config.full_scale_e:.4g} e- at full scale per sensor pixel; the paper's f/12.5 "
        f"camera would collect {config.full_scale_e * config.exposure_factor:.4g} e- in the same exposure"
    )
    console.print({"camera": config.to_dict(), "provenance": provenance})


@lens_app.command("export")
def lens_export(
    path: Path = typer.Argument(..., help="A lens file."),
    calibration: Path = typer.Option(..., help="Mirror calibration CSV (term,max_um)."),
    out: Path = typer.Option(..., "--out", "-o", help="Mirror file to write (CSV)."),
    clip: bool = typer.Option(False, help="Clip amplitudes beyond [-1, 1] instead of refusing."),
    drop_unsupported: bool = typer.Option(
        False, help="Drop non-zero terms above Noll 15 instead of refusing."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Convert a lens to deformable-mirror amplitudes (Thorlabs numbering Z4..Z15)."""
    import warnings

    from privlens.optics.hardware import (
        HardwareFileError,
        coefficients_to_mirror,
        read_calibration,
        write_mirror_file,
    )
    from privlens.optics.lensfile import LensFileError, read_lens
    from privlens.outputs import check_output_file

    check_output_file(out, (".csv",), overwrite, inputs=[path, calibration])
    try:
        coeffs, _, _ = read_lens(path)
        table = read_calibration(calibration)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export = coefficients_to_mirror(coeffs, table, "clip" if clip else "error", drop_unsupported)
    except (LensFileError, HardwareFileError, ValueError) as error:
        fail(str(error))
    for note in export.notes:
        info(f"note: {note}", style="yellow")
    write_mirror_file(export, out, source=str(path))
    say(f"wrote {out}")


@lens_app.command("import")
def lens_import(
    path: Path = typer.Argument(..., help="A wavefront-sensor reading or a mirror file (CSV)."),
    out: Path = typer.Option(..., "--out", "-o", help="Lens file to write (.safetensors)."),
    format: ImportFormat = typer.Option(ImportFormat.wavefront, "--format", help="Input kind."),
    convention: IndexConvention = typer.Option(
        IndexConvention.noll, help="Numbering of a wavefront reading."
    ),
    calibration: Path | None = typer.Option(None, help="Calibration CSV, for --format mirror."),
    like: str = typer.Option("open", help="Camera settings to use: a preset name or a lens file."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Turn measured coefficients (um) or a mirror file into a lens file (Noll order)."""
    import torch

    from privlens.optics.camera import Camera
    from privlens.optics.hardware import (
        HardwareFileError,
        read_calibration,
        read_mirror_file,
        read_wavefront_file,
    )
    from privlens.optics.lensfile import LensFileError, save_lens
    from privlens.outputs import check_output_file

    check_output_file(out, (".safetensors",), overwrite, inputs=[path])
    base = build_camera(like, 256, DEFAULT_DEFOCUS_UM, DEFAULT_PROTOTYPE_SCALE_UM)
    terms = base.config.num_terms
    try:
        if format == ImportFormat.mirror:
            if calibration is None:
                fail("--format mirror needs --calibration")
            coeffs = read_mirror_file(path, read_calibration(calibration), terms)
        else:
            coeffs = read_wavefront_file(path, convention.value, terms)
        camera = Camera(base.config, torch.as_tensor(coeffs))
    except (LensFileError, HardwareFileError, ValueError) as error:
        fail(str(error))
    save_lens(camera, out, {"imported_from": str(path), "format": format.value})
    say(f"wrote {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output folder."),
    fast: bool = typer.Option(False, help="A reduced version (seconds of training; for CI)."),
    gan_run: Path | None = typer.Option(None, help="A Stage II run folder: anonymise with its generator."),
    train_stage1: bool = typer.Option(
        False, help="Train a tiny Stage I (U and lens) here instead of using the shipped models."
    ),
) -> None:
    """The whole pipeline on embedded data: Stage I, captures, attacks, anonymisation, evaluation, report."""
    from privlens.commands.common import StepProgress
    from privlens.demo import run_demo
    from privlens.report.tables import to_markdown

    with StepProgress("demo", total=None) as step:
        result = run_demo(out, fast, gan_run, progress=step, train_stage1=train_stage1)
    table = Table(title="captures of the astronaut (PSNR against the scene)")
    table.add_column("lens")
    table.add_column("PSNR (dB)", justify="right")
    for lens, value in result.psnr_db.items():
        table.add_row(lens, f"{value:.2f}")
    console.print(table)
    if result.attacks is not None:
        say("attacks on the embedded LFW faces (identity distance < 0.6 = re-identified):")
        say(to_markdown(result.attacks.rows))
    say(f"anonymisation backend: {result.backend} ({result.backend_reason})")
    say("evaluation protocol:")
    say(to_markdown(result.evaluation_rows))
    say("seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    say(f"report: {result.report}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A demo output folder (or one laid out like it)."),
) -> None:
    """Render RUN_DIR/report.html: one self-contained page (figures embedded, no external URL)."""
    from privlens.report.demo_report import ReportInputError, write_demo_report

    try:
        path = write_demo_report(run_dir)
    except (FileNotFoundError, ReportInputError) as error:
        fail(str(error))
    say(f"report: {path}")


if __name__ == "__main__":  # pragma: no cover
    app()
