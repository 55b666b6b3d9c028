"""Peak memory of every image-reading command on one very large PNG (default 12000 x 12000).

Each command runs in a fresh Python process (the ``privlens`` command line, in-process there); the
process reports its peak resident set size (``VmHWM`` from ``/proc/self/status``), split at the
end into file-backed pages (shared libraries: the CUDA build of PyTorch maps about 440 MB of them)
and anonymous memory (what the command allocated). A baseline process that only imports the
command line gives the floor every command pays.

    python benchmarks/bench_memory.py                       # every command, 12000 x 12000
    python benchmarks/bench_memory.py --side 4000 --commands capture attack
    python benchmarks/bench_memory.py --small-side 512      # also each command on a 512 px PNG

``--small-side`` runs every command a second time on a small PNG: the difference is what the
large image itself costs, the rest is the command's own floor (models, libraries).

Linux only (``/proc``). The models for ``anonymize`` are tiny random ones written here (the
memory of the image path does not depend on the weights). Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RUNNER = textwrap.dedent(
    """
    import json, sys, time, threading
    def status():
        fields = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[key] = int(value.split()[0]) / 1024
        return fields
    peak = {"RssAnon": 0.0}
    def sample():
        while True:
            peak["RssAnon"] = max(peak["RssAnon"], status().get("RssAnon", 0.0))
            time.sleep(0.02)
    threading.Thread(target=sample, daemon=True).start()
    args = json.loads(sys.argv[1])
    start = time.perf_counter()
    code = 0
    if args:
        from typer.testing import CliRunner
        from privlens.cli import app
        result = CliRunner().invoke(app, args)
        code = result.exit_code
        tail = result.output.strip().splitlines()[-1:] if result.output.strip() else []
    else:
        import privlens.cli  # noqa: F401  (the baseline: imports only)
        tail = []
    final = status()
    print(json.dumps({"exit": code, "seconds": time.perf_counter() - start, "peak_rss_mb": final["VmHWM"],
                      "peak_anon_mb_sampled": max(peak["RssAnon"], final.get("RssAnon", 0.0)),
                      "file_backed_mb_at_end": final.get("RssFile", 0.0), "last_line": tail}))
    """
)


def make_inputs(folder: Path, side: int) -> dict[str, Path]:
    """The large PNG (the astronaut, nearest-neighbour upscaled: a real face, small file), a
    reference face, and tiny random models for ``anonymize``."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from privlens.data.images import save_image
    from privlens.data.samples import lfw_faces
    from privlens.models.heatmap import save_heatmap_net
    from privlens.nets import HeatmapNet
    from privlens.optics.lensfile import save_lens
    from privlens.optics.presets import make_camera

    big_dir = folder / "big"
    big_dir.mkdir(parents=True, exist_ok=True)
    big = big_dir / "astronaut.png"
    if not big.is_file():
        image = Image.fromarray(np.asarray(data.astronaut())).resize((side, side), Image.NEAREST)
        image.save(big, compress_level=1)
        del image
    reference = folder / "reference.png"
    save_image(lfw_faces()[0], reference)
    lens = save_lens(make_camera("prototype", 64), folder / "lens.safetensors", {"bench": "memory"})
    heatmap = save_heatmap_net(
        HeatmapNet(width=16, num_stacks=1, depth=2), folder / "u.safetensors", image_size=64
    )
    return {"big": big, "big_dir": big_dir, "reference": reference, "lens": lens, "heatmap": heatmap}


def commands(inputs: dict[str, Path], out: Path) -> dict[str, list[str]]:
    big, big_dir = str(inputs["big"]), str(inputs["big_dir"])
    return {
        "capture": ["capture", big, "--out", str(out / "capture"), "--size", "256"],
        "anonymize": [
            "anonymize",
            big,
            "--lens",
            str(inputs["lens"]),
            "--heatmap",
            str(inputs["heatmap"]),
            "--generator",
            "warp",
            "--reference",
            str(inputs["reference"]),
            "--out",
            str(out / "anonymize"),
            "--size",
            "64",
        ],  # fmt: skip
        "data prepare": ["data", "prepare", big_dir, str(out / "prepare"), "--size", "256", "--no-progress"],
        "eval pairs": [
            "eval",
            "pairs",
            big_dir,
            big_dir,
            "--identity",
            "dlib",
            "--no-fid",
            "--no-lpips",
            "--no-progress",
        ],  # fmt: skip
        "attack": [
            "attack",
            "--no-presets",
            "--lens",
            "defocus",
            "--data",
            big_dir,
            "--out",
            str(out / "attack"),
            "--size",
            "64",
            "--evaluation-count",
            "1",
            "--inversion-steps",
            "0",
            "--rl-max-iterations",
            "2",
            "--no-identity",
        ],  # fmt: skip
    }


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(args: list[str], timeout: float) -> dict:
    """Run one command in a fresh process; on a time-out, the peak RSS seen so far is reported."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _vm_hwm_mb(process.pid) or 0.0)
        if time.perf_counter() - started > timeout:
            process.kill()
            process.communicate()
            return {"exit": "timeout", "seconds": time.perf_counter() - started, "peak_rss_mb": peak}
        time.sleep(0.5)
    stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"exit": process.returncode, "peak_rss_mb": peak, "error": stderr.strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=12000, help="side of the square PNG, pixels")
    parser.add_argument("--commands", nargs="*", default=None, help="subset of the commands")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs and outputs go")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per command")
    parser.add_argument("--small-side", type=int, default=0, help="also run on a PNG of this side")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="privlens-mem-"))
    inputs = make_inputs(workdir, options.side)
    megabytes = inputs["big"].stat().st_size / 1e6
    print(f"input: {inputs['big']} ({options.side} x {options.side}, {megabytes:.1f} MB)")
    rows = {"baseline (import only)": measure([], options.timeout)}
    table = commands(inputs, Path(tempfile.mkdtemp(dir=workdir, prefix="out-")))  # fresh: no resuming
    small: dict[str, dict] = {}
    if options.small_side:
        small_inputs = make_inputs(workdir / f"small-{options.small_side}", options.small_side)
        small_table = commands(small_inputs, Path(tempfile.mkdtemp(dir=workdir, prefix="out-small-")))
    for name in options.commands or table:
        rows[name] = measure(table[name], options.timeout)
        print(name, rows[name], flush=True)
        if options.small_side:
            small[name] = measure(small_table[name], options.timeout)
            print(f"{name} ({options.small_side} px)", small[name], flush=True)
    extra = f" same command, {options.small_side} px PNG (MB) |" if options.small_side else ""
    header = "| command | peak RSS (MB) | file-backed at end (MB) | peak anonymous, sampled (MB) | s | exit |"
    print(f"\n{header}{extra}")
    print("|---|---|---|---|---|---|" + ("---|" if extra else ""))
    for name, row in rows.items():
        cells = [
            row.get(k) for k in ("peak_rss_mb", "file_backed_mb_at_end", "peak_anon_mb_sampled", "seconds")
        ]
        text = [f"{c:.0f}" if isinstance(c, float) else str(c) for c in cells]
        tail = ""
        if extra:
            value = small.get(name, {}).get("peak_rss_mb")
            tail = f" {value:.0f} |" if isinstance(value, float) else " — |"
        print(f"| {name} | {' | '.join(text)} | {row.get('exit')} |{tail}")


if __name__ == "__main__":
    main()
