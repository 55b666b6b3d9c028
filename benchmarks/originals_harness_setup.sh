#!/usr/bin/env bash
# Export the authors' code that benchmarks/originals_harness.py times into the git-ignored
# .originals/ folder, from mirrors made with the `fetch` tool (clovaai/stargan-v2,
# carlosh93/privacy-preserving-vision), or from any clone: MIRRORS=/path/with/owner+name/repo.
# Timing only: .originals/ is in .gitignore and must never be committed.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRRORS=${MIRRORS:-/work/.mirror}
out=.originals
mkdir -p "$out"
export_tree() {  # git-dir target paths...
    local gitdir=$1 target=$2; shift 2
    rm -rf "$out/$target"; mkdir -p "$out/$target"
    git --git-dir="$gitdir" archive HEAD "$@" | tar -x -C "$out/$target"
    git --git-dir="$gitdir" rev-parse HEAD > "$out/$target/COMMIT"
}
export_tree "$MIRRORS/clovaai+stargan-v2/repo" stargan-v2 core metrics/__init__.py metrics/eval.py \
    metrics/fid.py metrics/lpips.py LICENSE NOTICE
export_tree "$MIRRORS/carlosh93+privacy-preserving-vision/repo" privacy-preserving-vision \
    Face-DeId/Camera/Optics.py Face-DeId/Camera/Utils.py Face-DeId/LICENSE.txt
git check-ignore -q "$out" || { echo "$out is not git-ignored: refusing to leave it here" >&2; exit 1; }
du -sh "$out"
