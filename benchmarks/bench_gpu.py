"""Every speed target of issue 13 on one GPU, beside the original code, in one table.

    python benchmarks/bench_gpu.py PART --results DIR      (PART: see PARTS; gpu.sh runs them all)
    python benchmarks/bench_gpu.py table --results DIR     (rebuild DIR/gpu_results.json and print)

Each part runs in its own process (``benchmarks/gpu.sh`` time-boxes it with ``timeout``) and
appends one JSON record per measurement to ``DIR/parts.jsonl`` as soon as it has it, so a crash or
a timeout loses only the measurement in flight. ``table`` turns the records into the table
(ours | original | ratio | target) and ``DIR/gpu_results.json``. ``SMOKE=1`` shrinks every size
and count so the whole chain runs on a CPU in minutes (its figures mean nothing).

What is reused rather than rewritten: ``bench_camera.camera_step``/``camera_forward``,
``bench_anonymize.pipeline``, and ``bench_stage1.py``/``bench_stage2.py`` run as they are (their
JSON lines parsed). The originals are timed by ``originals_harness.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SMOKE = os.environ.get("SMOKE", "") not in ("", "0")

# --------------------------------------------------------------------------- records
_RESULTS: Path | None = None
_PART = ""


def record(metric: str, value: float | None, unit: str, higher_is_better: bool = True, **extra) -> None:
    """Append one measurement to parts.jsonl now (and echo it)."""
    row = {
        "part": _PART,
        "metric": metric,
        "value": value,
        "unit": unit,
        "higher_is_better": higher_is_better,
        "smoke": SMOKE,
        **extra,
    }
    line = json.dumps(row, default=str)
    print(line, flush=True)
    if _RESULTS is not None:
        with open(_RESULTS / "parts.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def guarded(metric: str, fn: Callable[[], None]) -> None:
    """Run one measurement; an exception becomes an ``error`` record and the part goes on."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - a benchmark must report, not stop
        traceback.print_exc()
        record(metric, None, "error", error=f"{type(error).__name__}: {error}"[:500])
        _free_cuda()


def _free_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _needs_cuda() -> bool:
    """Outside smoke mode the figures mean something only on CUDA: say so and skip."""
    import torch

    if torch.cuda.is_available() or SMOKE:
        return False
    record(f"{_PART}: skipped", None, "skipped", reason="no CUDA device")
    return True


def _cuda_fast_settings() -> None:
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


# --------------------------------------------------------------------------- parts
def part_env() -> None:
    import torch

    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            capability=f"{props.major}.{props.minor}",
        )
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            info["nvidia_smi"] = smi.stdout.strip()
            info["driver"] = smi.stdout.strip().split(",")[1].strip() if smi.stdout.strip() else None
        except (OSError, subprocess.SubprocessError, IndexError) as error:
            info["driver"] = f"unknown ({error})"
    else:
        info["gpu"] = None
    for name in ("numpy", "scipy", "cv2", "lpips", "munch", "facenet_pytorch", "dlib", "triton"):
        try:
            module = __import__(name)
            info[f"v_{name}"] = getattr(module, "__version__", "present")
        except Exception as error:  # noqa: BLE001
            info[f"v_{name}"] = f"absent ({type(error).__name__})"
    record("env", None, "info", **info)


def part_tests() -> None:
    """Summarise the junit files pytest wrote (gpu.sh runs pytest itself, time-boxed, in two runs:
    the eager checks, then the ``torch.compile`` ones)."""
    import xml.etree.ElementTree as ET

    stem = os.environ.get("JUNIT", "/tmp/privlens_gpu_junit")
    for kind in ("eager", "compile"):
        metric = "cuda tests" if kind == "eager" else "cuda tests (compile)"
        path = Path(f"{stem}.{kind}.xml")
        if not path.is_file():
            if SMOKE and kind == "compile":
                record(metric, None, "skipped", reason="not run in a smoke run")
            else:
                record(metric, None, "error", error=f"no junit file {path} (pytest not run or killed)")
            continue
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        keys = ("tests", "failures", "errors", "skipped")
        counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in keys}
        failed = [
            f"{case.get('classname')}::{case.get('name')}"
            for case in root.iter("testcase")
            if case.find("failure") is not None or case.find("error") is not None
        ]
        passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        record(metric, passed, "passed", failed=failed, **counts)


def part_camera() -> None:
    if _needs_cuda():
        return
    import torch
    from bench_camera import camera_forward, camera_step
    from timing import run_times

    from privlens.optics import Camera, CameraConfig
    from privlens.optics.presets import prototype_coefficients

    device = _device()
    size, big, small, repeats = (64, 4, 2, 2) if SMOKE else (256, 256, 8, 30)
    g = torch.Generator().manual_seed(0)
    images_big = torch.rand(big, 3, size, size, generator=g).to(device)
    images_small = torch.rand(small, 3, size, size, generator=g).to(device)
    for terms in (15, 300):
        for mode in ("circular", "linear"):
            key = f"p{terms}.{mode}"

            def measure(terms=terms, mode=mode, key=key) -> None:
                # the prototype lens (Noll 1-14 set, the rest 0): a physical mask whose sampling the
                # camera accepts at any p; the authors' camera costs the same whatever its values
                coeffs = prototype_coefficients(terms)
                camera = Camera(CameraConfig(image_size=size, num_terms=terms, convolution=mode), coeffs)
                camera = camera.to(device)
                times = run_times(camera_forward(camera.eval(), images_big), device, repeats, warmup=3)
                median = sorted(times)[len(times) // 2]
                record(f"cam.fwd.{key}", big / median, "images/s", batch=big, size=size, ms=median * 1e3)
                times = run_times(camera_step(camera.train(), images_small), device, repeats, warmup=3)
                median = sorted(times)[len(times) // 2]
                record(f"cam.fb.{key}", median * 1e3, "ms", False, batch=small, size=size)

            guarded(f"cam.{key}", measure)


def part_camera_orig() -> None:
    if _needs_cuda():
        return
    import originals_harness as H

    device = _device()
    size, big, small, repeats = (64, 4, 2, 2) if SMOKE else (256, 256, 8, 30)
    for terms in (15, 300):

        def measure(terms=terms) -> None:
            out = H.time_authors_camera(device, terms, size, big, small, repeats, warmup=3)
            extra = {k: v for k, v in out.items() if k not in ("forward_images_per_s", "fwd_bwd_ms")}
            record(f"orig.cam.fwd.p{terms}", out["forward_images_per_s"], "images/s", **extra)
            record(f"orig.cam.fb.p{terms}", out["fwd_bwd_ms"], "ms", False, **extra)

        guarded(f"orig.cam.p{terms}", measure)


def _json_lines(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            with contextlib.suppress(json.JSONDecodeError):
                rows.append(json.loads(line))
    return rows


def _run_script(args: list[str], on_row: Callable[[dict], None], timeout: float) -> int:
    """Run a sibling benchmark script, echo its output and hand each JSON line to ``on_row`` as it
    arrives (so a time-out keeps the rows already printed); returns how many rows came."""
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    rows, tail = 0, []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        tail = (tail + [line.rstrip()])[-3:]
        for row in _json_lines(line):
            on_row(row)
            rows += 1
        if time.monotonic() > deadline:
            proc.kill()
            break
    code = proc.wait()
    if code != 0 and rows == 0:
        raise RuntimeError(f"{args[0]} exited {code}: {' | '.join(tail)}")
    return rows


def part_stage1() -> None:
    if _needs_cuda():
        return
    device = _device()
    size, batch, width, steps = (64, 2, 16, 1) if SMOKE else (256, 16, 256, 10)
    for amp in ("auto", "off"):

        def measure(amp=amp) -> None:
            args = ["bench_stage1.py", f"--device={device.type}", f"--batch={batch}", f"--size={size}"]
            args += [f"--width={width}", f"--steps={steps}", "--warmup=2", f"--amp={amp}"]

            def on_row(row: dict, amp=amp) -> None:
                times = row.pop("times_s", None)
                record(f"stage1.{amp}", row["steps_per_s"], "steps/s", times_s=times, **row)

            _run_script(args, on_row, timeout=float(os.environ.get("PART_TIMEOUT", 300)))

        guarded(f"stage1.{amp}", measure)


STAGE2_EAGER = ("fp32", "bf16", "channels_last", "bf16+channels_last")


def _stage2(variants: tuple[str, ...]) -> None:
    if _needs_cuda():
        return
    device = _device()
    args = ["bench_stage2.py", f"--device={device.type}", f"--variants={','.join(variants)}"]
    if SMOKE:
        args += ["--size=32", "--batch=2", "--iters=1", "--warmup=1", "--u-width=16", "--base-width=8"]
        args += ["--max-width=32", "--mapping-hidden=32"]
    else:
        args += ["--size=256", "--batch=8", "--iters=6", "--warmup=2"]

    def measure() -> None:
        seen: set[str] = set()

        def on_row(row: dict) -> None:
            seen.add(row["variant"])
            record(f"stage2.{row['variant']}", row["iterations_per_s"], "it/s", **row)

        _run_script(args, on_row, timeout=float(os.environ.get("PART_TIMEOUT", 600)))
        missing = set(variants) - seen
        for variant in sorted(missing):
            record(f"stage2.{variant}", None, "error", error="no result (see gpu.log)")

    guarded("stage2", measure)


def part_stage2() -> None:
    _stage2(STAGE2_EAGER)


def part_stage2_compile() -> None:
    _stage2(("compile",))


def part_stage2_orig() -> None:
    if _needs_cuda():
        return
    import originals_harness as H

    device = _device()
    kwargs = dict(size=32, batch=1, iters=1, warmup=0, w_hpf=0.0) if SMOKE else dict(size=256, batch=8)
    for bf16 in (False,) if SMOKE else (False, True):  # bf16 autocast on a CPU takes minutes
        key = "bf16" if bf16 else "fp32"

        def measure(bf16=bf16, key=key) -> None:
            out = H.time_stargan_training(device, bf16=bf16, **kwargs)
            record(f"orig.stage2.{key}", out.pop("iterations_per_s"), "it/s", **out)

        guarded(f"orig.stage2.{key}", measure)
        _free_cuda()


ANON_EAGER = ("fp32", "bf16", "channels_last+bf16")


def _anonymize(variants: tuple[str, ...]) -> None:
    if _needs_cuda():
        return
    import torch
    from bench_anonymize import pipeline
    from timing import best_time

    _cuda_fast_settings()
    device = _device()
    size, batches, repeats = (64, (2,), 1) if SMOKE else (256, (64, 128), 10)
    g = torch.Generator().manual_seed(0)
    for variant in variants:

        def measure(variant=variant) -> None:
            run = pipeline(size, device, variant)
            for batch in batches:
                scenes = torch.rand(batch, 3, size, size, generator=g).to(device)
                refs = torch.rand(batch, 3, size, size, generator=g).to(device)
                domains = torch.randint(0, 2, (batch,), generator=g).to(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                seconds = best_time(lambda: run(scenes, refs, domains), repeats, device)  # noqa: B023
                peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
                record(
                    f"anon.{variant}.b{batch}",
                    batch / seconds,
                    "images/s",
                    batch=batch,
                    size=size,
                    peak_memory_gb=peak,
                    note="camera -> U -> S -> G, fresh weights, best of repeats",
                )

        guarded(f"anon.{variant}", measure)
        _free_cuda()


def part_anonymize() -> None:
    _anonymize(ANON_EAGER[:1] if SMOKE else ANON_EAGER)  # bf16 on a CPU takes minutes


def part_anonymize_compile() -> None:
    _anonymize(("compile",))


def part_anonymize_orig() -> None:
    if _needs_cuda():
        return
    import originals_harness as H

    device = _device()
    kwargs = dict(size=32, batch=1, repeats=1, warmup=0) if SMOKE else dict(size=256, batch=64)
    for bf16 in (False,) if SMOKE else (False, True):  # bf16 autocast on a CPU takes minutes
        key = "bf16" if bf16 else "fp32"

        def measure(bf16=bf16, key=key) -> None:
            out = H.time_stargan_inference(device, bf16=bf16, **kwargs)
            record(f"orig.infer.{key}.b{out['batch']}", out.pop("images_per_s"), "images/s", **out)

        guarded(f"orig.infer.{key}", measure)


def part_frames() -> None:
    if _needs_cuda():
        return
    from bench_gpu_frames import measure_frames

    guarded("frames", lambda: measure_frames(_device(), SMOKE, record))


PARTS: dict[str, Callable[[], None]] = {
    "env": part_env,
    "tests": part_tests,
    "camera": part_camera,
    "camera_orig": part_camera_orig,
    "stage1": part_stage1,
    "stage2": part_stage2,
    "stage2_orig": part_stage2_orig,
    "anonymize": part_anonymize,
    "anonymize_orig": part_anonymize_orig,
    "frames": part_frames,
    "stage2_compile": part_stage2_compile,
    "anonymize_compile": part_anonymize_compile,
}


# --------------------------------------------------------------------------- the table
def _load(results: Path) -> dict[str, dict]:
    """The last record of each metric (a rerun replaces an earlier one)."""
    rows: dict[str, dict] = {}
    path = results / "parts.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["metric"]] = row
    return rows


def _value(rows: dict[str, dict], key: str | None) -> float | None:
    row = rows.get(key) if key else None
    return row.get("value") if row and isinstance(row.get("value"), (int, float)) else None


def build_table(rows: dict[str, dict]) -> list[dict]:
    """(label, ours, original, ratio, target, met) rows; ratio > 1 means ours is better."""
    table: list[dict] = []

    def add(
        label: str,
        ours_key: str,
        orig_key: str | None,
        target: str,
        met: Callable[[float | None, float | None, float | None], bool | None],
    ) -> None:
        ours, orig = _value(rows, ours_key), _value(rows, orig_key)
        row = rows.get(ours_key, {})
        unit = row.get("unit", "")
        if unit == "error":
            unit = "error: " + str(row.get("error", ""))[:80]
        lower = row.get("higher_is_better") is False
        ratio = None
        if ours and orig:
            ratio = orig / ours if lower else ours / orig
        table.append(
            {
                "label": label,
                "metric": ours_key,
                "unit": unit,
                "ours": ours,
                "original_metric": orig_key,
                "original": orig,
                "ratio": ratio,
                "target": target,
                "met": met(ours, orig, ratio),
            }
        )

    def ratio_at_least(k: float):
        return lambda ours, orig, ratio: None if ratio is None else ratio >= k

    def at_least(k: float):
        return lambda ours, orig, ratio: None if ours is None else ours >= k

    def info(*_):
        return None

    for terms in (15, 300):
        for mode in ("circular", "linear"):
            anchor = terms == 15 and mode == "circular"
            orig = f"orig.cam.fwd.p{terms}" if mode == "circular" else None
            add(
                f"camera forward b256 p={terms} {mode}",
                f"cam.fwd.p{terms}.{mode}",
                orig,
                ">=1.5x authors" if anchor else "-",
                ratio_at_least(1.5) if anchor else info,
            )
    for terms in (15, 300):
        for mode in ("circular", "linear"):
            anchor = terms == 15 and mode == "circular"
            orig = f"orig.cam.fb.p{terms}" if mode == "circular" else None
            add(
                f"camera fwd+bwd b8 p={terms} {mode} (ms)",
                f"cam.fb.p{terms}.{mode}",
                orig,
                ">=1.5x authors" if anchor else "-",
                ratio_at_least(1.5) if anchor else info,
            )
    add("Stage I steps/s (b16, 256 px, U width 256, amp auto)", "stage1.auto", None, ">=20", at_least(20))
    add("Stage I steps/s (amp off)", "stage1.off", None, ">=20", at_least(20))
    orig_peak = (rows.get("orig.stage2.fp32") or {}).get("peak_memory_gb")
    for variant in (*STAGE2_EAGER, "compile"):
        key = f"stage2.{variant}"
        peak = (rows.get(key) or {}).get("peak_memory_gb")

        def stage2_met(ours, orig, ratio, peak=peak):
            if ratio is None:
                return None
            memory_ok = peak is None or orig_peak is None or peak <= orig_peak
            return ratio >= 2.0 and memory_ok

        add(
            f"Stage II it/s {variant} (b8, 256 px; peak {peak if peak is None else round(peak, 1)} GB"
            f" vs {orig_peak if orig_peak is None else round(orig_peak, 1)})",
            key,
            "orig.stage2.fp32",
            ">=2x StarGAN v2 fp32, <= its memory",
            stage2_met,
        )
    add("StarGAN v2 original it/s, bf16 autocast (info)", "orig.stage2.bf16", "orig.stage2.fp32", "-", info)
    for variant in (*ANON_EAGER, "compile"):
        for batch in (64, 128):
            add(
                f"anonymise images/s {variant} b{batch} (256 px crops)",
                f"anon.{variant}.b{batch}",
                "orig.infer.fp32.b64",
                ">=1000 img/s",
                at_least(1000),
            )
    add(
        "StarGAN v2 original inference bf16 b64 (info)",
        "orig.infer.bf16.b64",
        "orig.infer.fp32.b64",
        "-",
        info,
    )
    add(
        "1920x1080 frames/s, 5 faces, privlens FramePipeline (check on)",
        "frames.1080p5",
        None,
        ">=30 fps",
        at_least(30),
    )
    add(
        "1920x1080 frames/s, FramePipeline without the face check",
        "frames.1080p5.nocheck",
        None,
        ">=30 fps",
        at_least(30),
    )
    add(
        "1920x1080 frames/s, lean loop (GPU MTCNN)", "frames.1080p5.gpu_mtcnn", None, ">=30 fps", at_least(30)
    )
    return table


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def write_table(results: Path) -> dict:
    rows = _load(results)
    table = build_table(rows)
    env = (rows.get("env") or {}).copy()
    for key in ("part", "metric", "value", "unit", "higher_is_better"):
        env.pop(key, None)
    tests = [rows[k] for k in ("cuda tests", "cuda tests (compile)") if k in rows]
    payload = {
        "generated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "smoke": SMOKE,
        "env": env,
        "tests": tests,
        "table": table,
        "records": list(rows.values()),
    }
    tmp = results / "gpu_results.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    tmp.replace(results / "gpu_results.json")
    return payload


def print_table(payload: dict) -> None:
    env = payload["env"]
    smoke = " | SMOKE (figures meaningless)" if payload["smoke"] else ""
    print(
        f"\nGPU: {env.get('gpu')} | driver {env.get('driver')} | torch {env.get('torch')} "
        f"| CUDA {env.get('torch_cuda')} | cuDNN {env.get('cudnn')}{smoke}"
    )
    for tests in payload.get("tests") or []:
        if tests.get("value") is None:
            print(f"{tests['metric']}: {tests.get('unit')} ({tests.get('error') or tests.get('reason')})")
            continue
        print(
            f"{tests['metric']}: {tests['value']} passed of {tests.get('tests')}, "
            f"{tests.get('failures')} failed, {tests.get('errors')} errors, {tests.get('skipped')} skipped "
            f"{tests.get('failed') or ''}"
        )
    print("\n| measurement | unit | ours | original | ratio | target | met? |")
    print("|---|---|---|---|---|---|---|")
    for row in payload["table"]:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        print(
            f"| {row['label']} | {row['unit']} | {_fmt(row['ours'])} | {_fmt(row['original'])} "
            f"| {_fmt(row['ratio'])} | {row['target']} | {met} |"
        )
    errors = [r for r in payload["records"] if r.get("unit") == "error"]
    for r in errors:
        print(f"error in {r['metric']}: {r.get('error')}")


def main() -> None:
    global _RESULTS, _PART
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=[*PARTS, "table"])
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("OUT", "gpu_results")))
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    _RESULTS, _PART = args.results, args.part
    if args.part == "table":
        print_table(write_table(args.results))
        return
    _cuda_fast_settings()
    began = time.perf_counter()
    try:
        PARTS[args.part]()
    finally:
        print(f"[{args.part}: {time.perf_counter() - began:.1f} s]", flush=True)
        write_table(args.results)


if __name__ == "__main__":
    main()
