#!/usr/bin/env bash
# One prepared GPU call (issue 13): CUDA tests, every speed target beside the original code, one table.
#
#   bash benchmarks/gpu.sh                 # on the lent GPU, from the repository root
#   SMOKE=1 OUT=/tmp/gpu_smoke bash benchmarks/gpu.sh    # CPU dry run: tiny sizes, same chain
#
# The device call carries .whl (wheels the GPU image lacks: lpips, munch, ffmpeg-python, future,
# facenet-pytorch, dlib-bin) and .originals (the authors' code, from
# benchmarks/originals_harness_setup.sh); both are git-ignored. Every part runs in its own process
# under `timeout`, appends its figures to $OUT/parts.jsonl as it gets them, and $OUT/gpu_results.json
# is rewritten after each part, so a crash or a timeout loses only the part in flight.
# $OUT keeps 3 files of ours (gpu.log, parts.jsonl, gpu_results.json); the device returns at most 8.
#
# Time: everything ends by GPU_TOTAL_S (default 480 s) after the start. Each part has its own box,
# cut to what is left. Last, with whatever time remains (at most HOOK_MAX_S, default 240 s), the
# Stage II shipped-generator hook runs if configs/shipped/stage2_64.yaml and the command file
# configs/shipped/stage2_64.gpu.sh both exist, as
#     bash configs/shipped/stage2_64.gpu.sh DEST SECONDS      (also PRIVLENS_GPU_SECONDS=SECONDS)
# from the repository root, with PYTHONPATH=src:/tmp/site (wheels installed) and python3 holding
# torch. DEST = $OUT/stage2_64; the hook must write its bundle there, flat, at most 5 files of
# <= 16 MiB (the device returns 8 files in all; extra or larger ones are dropped here). It gets
# SIGINT at SECONDS and SIGKILL 20 s later, so it should stop itself a little earlier.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
TOTAL=${GPU_TOTAL_S:-480}
HOOK_MAX=${HOOK_MAX_S:-240}
SMOKE=${SMOKE:-0}
export SMOKE
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
export OUT
LOG=$OUT/gpu.log
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
PY=${PYTHON:-python3}
SITE=${GPU_SITE:-/tmp/site}
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/privlens_inductor}
export JUNIT=/tmp/privlens_gpu_junit_$$
[ "$SMOKE" != 0 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

echo "== gpu.sh $(date -u +%FT%TZ) smoke=$SMOKE total=${TOTAL}s out=$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv

# --- wheels the image lacks (never fatal: parts that need them report their own error)
WHEELS=${GPU_WHEELS:-.whl}   # another folder only for a dry run on another Python (cp311 dlib-bin)
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
        || echo "!! wheel install failed; going on without them"
fi
export PYTHONPATH=$ROOT/src:$SITE${PYTHONPATH:+:$PYTHONPATH}
[ -d .originals/stargan-v2 ] || echo "!! .originals/ missing: the originals' parts will report errors (run benchmarks/originals_harness_setup.sh here, carry .originals)"

left() { echo $(( START + TOTAL - $(date +%s) )); }

note() {  # metric message: a line in parts.jsonl for what the table should show as missing
    printf '{"part": "gpu.sh", "metric": "%s", "value": null, "unit": "error", "error": "%s"}\n' "$1" "$2" >> "$OUT/parts.jsonl"
}

run_part() {  # name box_seconds command...: time-boxed, never stops the script
    local name=$1 box=$2; shift 2
    local remaining; remaining=$(( $(left) - 10 ))
    if (( remaining < 15 )); then
        echo "== $name: skipped, ${remaining}s left"; note "$name: skipped" "no time left in the ${TOTAL}s budget"; return
    fi
    (( box > remaining )) && box=$remaining
    echo; echo "== $name (box ${box}s, $(left)s left) $(date -u +%T)"
    local t0; t0=$(date +%s)
    timeout -k 10 "$box" "$@"
    local rc=$?
    echo "== $name: rc=$rc in $(( $(date +%s) - t0 ))s"
    if (( rc == 124 || rc == 137 )); then note "$name: timeout" "killed after ${box}s (partial results kept)"
    elif (( rc != 0 )); then note "$name: rc=$rc" "exited $rc, see gpu.log"; fi
}

bench() { run_part "$1" "$2" "$PY" benchmarks/bench_gpu.py "$1" --results "$OUT"; }

if [ "$SMOKE" != 0 ]; then S=3; else S=1; fi   # a busy 2-core CPU needs longer boxes than the GPU
bench env $(( 60 * S ))
pytest_cuda() {  # junit-file box -k-expression
    run_part "pytest $3" "$2" "$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider -o addopts="" \
        -rfEs --junitxml="$1" -k "$3"
}
pytest_cuda "$JUNIT.eager.xml" $(( 100 * S )) "not compiled"
bench camera $(( 60 * S ))
bench camera_orig $(( 45 * S ))
bench stage2 $(( 90 * S ))
bench stage2_orig $(( 60 * S ))
bench anonymize $(( 60 * S ))
bench anonymize_orig $(( 40 * S ))
bench stage1 $(( 60 * S ))
bench frames $(( 45 * S ))
if [ "$SMOKE" = 0 ]; then   # compiling takes minutes on a busy CPU: the smoke run leaves it out
    pytest_cuda "$JUNIT.compile.xml" 120 "compiled"
    bench stage2_compile 150
    bench anonymize_compile 90
fi
bench tests 30   # the pytest summaries into the results
"$PY" benchmarks/bench_gpu.py table --results "$OUT" > /dev/null || echo "!! table failed"

# --- hook: the Stage II shipped generator, with whatever time is left
HOOK=configs/shipped/stage2_64.gpu.sh
if [ -f configs/shipped/stage2_64.yaml ] && [ -f "$HOOK" ]; then
    budget=$(( $(left) - 25 ))
    (( budget > HOOK_MAX )) && budget=$HOOK_MAX
    DEST=$OUT/stage2_64
    if (( budget < 30 )); then
        echo "== stage2_64 hook: skipped, ${budget}s left"; note "stage2_64: skipped" "only ${budget}s left"
    else
        mkdir -p "$DEST"
        echo; echo "== stage2_64 hook: bash $HOOK $DEST $budget ($(date -u +%T))"
        PRIVLENS_GPU_SECONDS=$budget timeout -s INT -k 20 "$budget" bash "$HOOK" "$DEST" "$budget"
        rc=$?
        echo "== stage2_64 hook: rc=$rc"
        (( rc != 0 )) && note "stage2_64: rc=$rc" "the hook exited $rc (124: its time box), see gpu.log"
        # the device returns at most 8 files of <= 16 MiB, no deeper than $OUT/a/b: keep 5 flat files
        find "$DEST" -mindepth 1 -type d -prune -exec rm -rf {} + 2>/dev/null
        find "$DEST" -type f -size +16M -printf '!! %p is over 16 MiB: dropped\n' -delete
        ls -t "$DEST" | tail -n +6 | while read -r f; do echo "!! $DEST/$f dropped (over 5 files)"; rm -f "$DEST/$f"; done
        ls -la "$DEST"
    fi
else
    echo "== stage2_64 hook: not run (needs configs/shipped/stage2_64.yaml and $HOOK)"
fi

echo; echo "== done in $(( $(date +%s) - START ))s"
"$PY" benchmarks/bench_gpu.py table --results "$OUT" || echo "!! table failed"
ls -la "$OUT"
exec 1>&- 2>&-
wait "$TEE_PID" 2>/dev/null
