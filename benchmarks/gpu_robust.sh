#!/usr/bin/env bash
# One prepared GPU call (issues 14 and 10): Stage I speed on CUDA, then robust-lens candidates
# trained side by side on the one GPU, each time-boxed, and their files packed for the way back.
#
#   bash benchmarks/gpu_robust.sh                          # on the lent GPU, from the repository root
#   SMOKE=1 OUT=/tmp/gpu_robust bash benchmarks/gpu_robust.sh   # CPU dry run: seconds, same chain
#
# Needs the prepared embedded faces (runs/shipped/data, from `make models`; the device call
# carries that folder). Every candidate starts from the shipped lens-robust and its U with
# configs/shipped/stage1_robust_deconv_64.yaml plus the overrides in VARIANTS below, then gets a
# shape-mix U round through its frozen lens (configs/shipped/stage1_heatmap_robust_mix_64.yaml).
# Step counts: a short probe of all variants side by side measures each one's step rate under the
# same sharing, and train.steps is set to 85 % of what fits the phase's time box, so the cosine
# schedule ends on time; train.max_seconds is the safety net. Output in $OUT: gpu_robust.log,
# parts.jsonl (benchmarks/bench_gpu.py's Stage I records), robust_optics.tar.gz (after the
# lens phase) and robust_runs.tar.gz (at the end): each run's lens, U, summary, metrics, config
# and log; no checkpoints.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=${SMOKE:-0}
export SMOKE
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_robust.log") 2>&1
PY=${PYTHON:-python3}
DATA=${DATA:-runs/shipped/data}
WORK=${WORK:-/tmp/privlens_robust}
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
if [ "$SMOKE" != 0 ]; then
    T_OPTICS=${T_OPTICS:-20} T_U=${T_U:-10} PROBE=${PROBE:-2} THREADS=1
    SMALL=(loss.adversary_width=4 data.val_limit=4)
else
    T_OPTICS=${T_OPTICS:-200} T_U=${T_U:-90} PROBE=${PROBE:-60} THREADS=2
    SMALL=()
fi
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
START=$(date +%s)
echo "== gpu_robust.sh $(date -u +%FT%TZ) smoke=$SMOKE optics=${T_OPTICS}s u=${T_U}s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
[ -d "$DATA/train" ] || { echo "!! $DATA/train missing (make models here, carry runs/shipped/data)"; exit 2; }

if compgen -G ".whl/*.whl" >/dev/null && [ "$SMOKE" = 0 ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi

# --- 1. Stage I speed (issue 10, item 6): bench_stage1.py at b16, 256 px, U width 256, amp auto/off
if [ "${SKIP_BENCH:-0}" = 0 ]; then
    echo; echo "== Stage I benchmark $(date -u +%T)"
    timeout -k 10 120 "$PY" benchmarks/bench_gpu.py stage1 --results "$OUT" || echo "!! stage1 benchmark rc=$?"
fi

# --- 2. robust-lens candidates (issue 14)
VARIANTS=(
    "deconv-w3|"
    "deconv-w10|loss.adversary_weight=10"
    "deconv-w3-wide|loss.adversary_width=16"
    "plain-w3|loss.adversary_frontend=none"
    "deconv-w3-nodefocus|camera.frozen_terms=[1,2,3,4]"
    "deconv-w10-nodefocus|loss.adversary_weight=10 camera.frozen_terms=[1,2,3,4]"
)
[ "$SMOKE" != 0 ] && VARIANTS=("${VARIANTS[0]}" "${VARIANTS[3]}")
# ROBUST_VARIANTS="name|overrides;name|overrides" replaces the list (a second call's own variants)
[ -n "${ROBUST_VARIANTS:-}" ] && IFS=';' read -r -a VARIANTS <<< "$ROBUST_VARIANTS"
OPTICS_CFG=configs/shipped/stage1_robust_deconv_64.yaml
U_CFG=configs/shipped/stage1_heatmap_robust_mix_64.yaml
rm -rf "$WORK"; mkdir -p "$WORK"

train() {  # config out-dir overrides...: one Stage I run, its log beside it
    local cfg=$1 out=$2; shift 2
    mkdir -p "$out"
    "$PY" -c "from privlens.cli import app; app()" train optics -c "$cfg" -d "$DATA" -o "$out" --no-resume \
        "${SMALL[@]}" "$@" > "$out.log" 2>&1
    local rc=$?
    (( rc != 0 )) && { echo "!! $out: rc=$rc, the end of its log:"; tail -n 5 "$out.log"; }
    return 0
}

rate() {  # summary.json -> steps/s of that call (0 if missing)
    "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print(s.get('steps_per_s_this_call') or 0)" "$1/summary.json" 2>/dev/null || echo 0
}

steps_for() {  # rate seconds -> 85 % of the steps that fit (at least 20)
    "$PY" -c "import sys; r,t=map(float,sys.argv[1:]); print(max(20, int(0.85*r*t)))" "$1" "$2"
}

phase() {  # name config "variant|overrides"... (runs every variant side by side, waits)
    local name=$1 cfg=$2; shift 2
    local pids=() spec vname extra
    for spec in "$@"; do
        vname=${spec%%|*}; extra=${spec#*|}
        # shellcheck disable=SC2086  # the overrides are words
        train "$cfg" "$WORK/$name-$vname" $extra &
        pids+=($!)
    done
    wait "${pids[@]}"
}

u_specs() {  # "variant|overrides" for the U rounds through each variant's new lens
    local spec vname
    for spec in "${VARIANTS[@]}"; do
        vname=${spec%%|*}
        echo "$vname|camera.init=$WORK/optics-$vname/lens.safetensors net.pretrained=$WORK/optics-$vname/heatmap_net.safetensors"
    done
}

timed() {  # probe-name config seconds fixed-steps max-steps extra "variant|overrides"...
    # Fills SPECS: each spec with train.steps (fixed-steps if set, else from a side-by-side probe of
    # $PROBE steps, capped at max-steps), train.max_seconds and the extra overrides.
    local probe=$1 cfg=$2 seconds=$3 fixed=$4 cap=$5 extra=$6; shift 6
    local spec vname r n probes=()
    if [ -z "$fixed" ]; then
        echo; echo "== probe ($probe): every variant side by side, $PROBE steps ($(date -u +%T))"
        for spec in "$@"; do
            probes+=("${spec} train.steps=$PROBE train.val_every=$PROBE train.checkpoint_every=$PROBE data.val_limit=4")
        done
        phase "$probe" "$cfg" "${probes[@]}"
    fi
    SPECS=()
    for spec in "$@"; do
        vname=${spec%%|*}
        if [ -n "$fixed" ]; then n=$fixed; else
            r=$(rate "$WORK/$probe-$vname")
            n=$(steps_for "$r" "$seconds")
            (( n > cap )) && n=$cap
            echo "   $vname: ${r} steps/s in the probe -> train.steps=$n"
        fi
        SPECS+=("${spec} train.steps=$n train.max_seconds=$seconds${extra:+ $extra}")
    done
}

# OPTICS_STEPS / U_STEPS set: no probe, those step counts (a rate measured by an earlier call)
timed probe "$OPTICS_CFG" "$T_OPTICS" "${OPTICS_STEPS:-}" 1000000 "" "${VARIANTS[@]}"
optics_specs=("${SPECS[@]}")

echo; echo "== optics: lens + U against the attacker in the loop ($(date -u +%T), box ${T_OPTICS}s each)"
phase optics "$OPTICS_CFG" "${optics_specs[@]}"

pack() {  # tarball: the lenses, U files, summaries, metrics, configs and logs of the real runs so far
    (cd "$WORK" && find . -maxdepth 2 \( -name lens.safetensors -o -name heatmap_net.safetensors -o -name summary.json \
        -o -name metrics.jsonl -o -name config.yaml -o -name '*.log' \) ! -path './probe-*' ! -path './uprobe-*' -print0 \
        | tar --null -czf "$OUT/$1" -T -)
}
pack robust_optics.tar.gz   # kept even if the U rounds do not finish

echo; echo "== U rounds through each frozen new lens ($(date -u +%T), box ${T_U}s each)"
mapfile -t base_u < <(u_specs)
# at most 2000 steps: the recipe's round length
timed uprobe "$U_CFG" "$T_U" "${U_STEPS:-}" 2000 "train.val_every=250 train.checkpoint_every=250" "${base_u[@]}"
phase u "$U_CFG" "${SPECS[@]}"

echo; echo "== packing ($(date -u +%T))"
pack robust_runs.tar.gz
ls -la "$OUT"
for d in "$WORK"/optics-*/ "$WORK"/u-*/; do
    d=${d%/}
    [ -f "$d/summary.json" ] || { echo "   $(basename "$d"): no summary"; continue; }
    "$PY" - "$d" <<'EOF'
import json, sys
from pathlib import Path
s = json.loads((Path(sys.argv[1]) / "summary.json").read_text())
end = s.get("val_end") or {}
beta = s.get("beta_end_um") or []
print(f"   {Path(sys.argv[1]).name}: steps {s.get('steps')}/{s.get('planned_steps')} ({s.get('stopped_by')}), "
      f"{s.get('steps_per_s_this_call') or 0:.1f} steps/s, val nme {end.get('nme', float('nan')):.4f}, "
      f"adv psnr {(s.get('last_train_losses') or {}).get('adversary_psnr', float('nan')):.2f}, "
      f"beta4 {beta[3] if len(beta) > 3 else float('nan'):.2f}")
EOF
done
echo "== done in $(( $(date +%s) - START ))s"
