"""``privlens eval heatmap``: U's landmark NME next to the mean-shape baselines (thin: loads the
model and the faces, calls :func:`privlens.eval.heatmap.evaluate_heatmap`)."""

from __future__ import annotations

from pathlib import Path

import typer

HEATMAP_FILE = "heatmap_net.safetensors"
SHIPPED = "shipped"


def heatmap_path(heatmap: str, option: str = "--heatmap") -> Path:
    """U's file from ``shipped`` (the default U), a shipped U's name (e.g. ``heatmap-stop-video``),
    a run folder or a file; a clear error otherwise."""
    from privlens.commands.common import fail
    from privlens.models import shipped_path
    from privlens.models.registry import SHIPPED as SHIPPED_MODELS

    if heatmap == SHIPPED:
        return shipped_path("heatmap")
    if heatmap in SHIPPED_MODELS and SHIPPED_MODELS[heatmap].kind == "heatmap":
        return shipped_path(heatmap)
    path = Path(heatmap)
    if path.is_dir():
        if not (path / HEATMAP_FILE).is_file():
            fail(f"{option} {path} is a folder without {HEATMAP_FILE}; give U's file or a run folder")
        return path / HEATMAP_FILE
    if not path.is_file():
        fail(f"{option}: no such file, run folder or shipped U: {path}")
    return path


def heatmap(
    heatmap: str = typer.Option(
        SHIPPED,
        "--heatmap",
        help="U: heatmap_net.safetensors, a run folder, 'shipped' (the default U) or a shipped U's name.",
    ),
    data: Path = typer.Option(..., "--data", "-d", help="Folder written by `privlens data prepare`."),
    split: str = typer.Option("val", help="Which faces: val, train or all."),
    lens: str | None = typer.Option(
        None, "--lens", help="Also through this lens: a preset, lens file or run folder."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the report: .md or .json."),
    batch_size: int = typer.Option(32, help="Faces per forward pass."),
    sensor_noise: bool = typer.Option(
        True,
        help="With --lens, also the row 'lens+sensor': captures as the sensor stores them (shot and read "
        "noise at the lens file's light, quantised), as `privlens anonymize` makes them.",
    ),
    draws: int = typer.Option(3, help="Sensor-noise draws averaged in the 'lens+sensor' row."),
    seed: int = typer.Option(0, help="Seed of the first draw (draws use SEED, SEED + 1, ...)."),
) -> None:
    """Inter-ocular NME of U (68 points, vs dlib on the clean faces) next to the mean shape of U's
    training set and the evaluated faces' own mean shape, clean and through --lens, with N."""
    import torch

    from privlens.commands.common import check_seed, fail, info, say
    from privlens.eval.heatmap import HEATMAP_FORMATS, evaluate_heatmap, render_heatmap_report
    from privlens.files import atomic_write_text
    from privlens.models import load_heatmap_model
    from privlens.optics.presets import make_camera
    from privlens.train.data import LandmarkFaces

    fmt = None
    if out is not None:
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in HEATMAP_FORMATS:
            fail(f"--out must end in {', '.join('.' + f for f in HEATMAP_FORMATS)}, got {out.name!r}")
    if split not in ("val", "train", "all"):
        fail(f"--split must be val, train or all, got {split!r}")
    if batch_size < 1:
        fail(f"--batch-size must be positive, got {batch_size}")
    if draws < 1:
        fail(f"--draws must be >= 1, got {draws}")
    check_seed(seed)
    path = heatmap_path(heatmap)
    model = load_heatmap_model(path)
    notes = []
    size = model.image_size
    if size is None:
        size = 64
        notes.append("U's file does not record its training size: evaluated at 64 px")
    splits = ("train", "val") if split == "all" else (split,)
    faces = []
    for name in splits:
        try:
            faces.append(LandmarkFaces(data, name, size))
        except FileNotFoundError as error:
            fail(str(error))
        except ValueError as error:
            if split != "all":
                fail(f"--data: {error}")
    if not faces:
        fail(f"--data {data}: no faces in train or val")
    items = [f[i] for f in faces for i in range(len(f))]
    native = sorted({_image_size(f, i) for f in faces for i in range(len(f))})
    if any(side != (size, size) for side in native):
        sides = ", ".join(f"{h}x{w}" for h, w in native)
        notes.append(f"the aligned crops ({sides} px) were resized to U's {size} px")
    images = torch.stack([item["image"] for item in items])
    landmarks = torch.stack([item["landmarks"] for item in items])
    camera = None
    if lens is not None:
        try:
            camera = make_camera(lens, size, sensor_noise=False, noise_sigma=0.0)
        except ValueError as error:
            fail(f"--lens: {error}")
    if model.mean_shape is None:
        notes.append("U's file has no training mean shape (trained before privlens recorded it): n/a")
    seeds = range(seed, seed + draws) if (camera is not None and sensor_noise) else ()
    report = evaluate_heatmap(model.net, images, landmarks, model.mean_shape, camera, batch_size, seeds)
    report.notes.extend(notes)
    report.sources.update({"U": str(path), "faces": f"{data} ({split})"})
    if lens is not None:
        report.sources["lens"] = f"{lens} (row 'lens': the noise-free optical image)"
        if seeds:
            sensor = camera.config
            report.sources["sensor"] = (
                f"row 'lens+sensor': {sensor.full_scale_e:g} e- at full scale per sensor pixel, read noise "
                f"{sensor.read_noise_e:g} e-, {sensor.bit_depth} bits; seeds {seed}..{seed + draws - 1}"
            )
    say(render_heatmap_report(report, "md").rstrip())
    if out is not None:
        atomic_write_text(out, render_heatmap_report(report, fmt))
        info(f"wrote {out}")


def _image_size(faces, index: int) -> tuple[int, int]:
    from PIL import Image

    with Image.open(faces.root / faces.items[index][0]) as image:
        return image.height, image.width
