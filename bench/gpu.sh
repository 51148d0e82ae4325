#!/usr/bin/env bash
# All GPU checks of the kit in one go, for a short slot on a fresh GPU machine with no network (issue 14).
#
#   here, once:          bash bench/gpu_wheels.sh              # the missing packages as wheels, into .whl/
#   on the GPU machine:  bash bench/gpu.sh                     # the device tool: carry [".whl"]
#   on a CPU, anywhere:  bash bench/gpu.sh --dry-run           # every step with tiny sizes: shows it runs end to end
#
# 1. installs the carried wheels (.whl/: fastai, fastcore, fasttransform, fastprogress, plum-dispatch, nbdev, execnb,
#    IPython, zarr, imagecodecs...) into /tmp/site, offline; the kit itself runs from this checkout (PYTHONPATH), and
#    its til_train / til_infer commands from two one-line launchers;
# 2. runs the `#| cuda` cells: `nbdev_test --flags cuda` on each notebook that has them;
# 3. bench/gpu.py: R50 MTL training samples/s at 512² (fp32 against bf16 + channels-last), end-to-end slide throughput
#    (read + infer + write; tiles/s; GPU idle share) on a JPEG-tiled slide sized to run about a minute, and til_train /
#    a cohort til_infer under a distributed launcher with one process. The launcher is $LAUNCH, by default torchrun
#    with one process: Accelerate then runs with a real process group (NCCL on CUDA, gloo on a CPU), which
#    `accelerate launch --num_processes 1` does not make (it starts a plain process; --multi_gpu needs ≥ 2);
#    `accelerate launch --multi_gpu --num_processes N` uses the same machinery for N ≥ 2;
# 4. prints one table (and writes bench/_out/gpu.json, bench/_out/gpu.log). Within 8 minutes on an H100/H200.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
START=$SECONDS
mkdir -p bench/_out
LOG=bench/_out/gpu.log
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }

PY=python3
if [[ $DRY == 0 ]]; then
    if ls .whl/*.whl > /dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            || { say "FAIL: installing the carried wheels"; exit 1; }
        export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
        say "installed $(ls .whl/*.whl | wc -l) carried wheels in $((SECONDS - START)) s"
    else
        say "no .whl/ here: using the packages installed (run bench/gpu_wheels.sh and carry .whl for a fresh machine)"
    fi
else
    PY=python
    export ACCELERATE_USE_CPU=1  # a CPU process group (gloo) under the launcher
    say "dry run: CPU, tiny sizes; nothing installed"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
BIN=$(mktemp -d)
for c in til_train til_infer; do
    printf '#!/usr/bin/env %s\nfrom til_kit.cli import %s\n%s()\n' "$PY" "$c" "$c" > "$BIN/$c"
    chmod +x "$BIN/$c"
done
export TIL_BIN=$BIN PATH=$BIN:$PATH
export LAUNCH=${LAUNCH:-"torchrun --standalone --nproc_per_node 1"}
$PY -c "import fastai, torch, til_kit.learner; print('fastai', fastai.__version__, 'torch', torch.__version__, \
'cuda', torch.cuda.is_available())" 2>&1 | tail -1 | tee -a "$LOG"

CELLS=()
for nb in $(grep -l '#| cuda' nbs/*.ipynb); do
    if [[ $DRY == 1 ]]; then
        CELLS+=("cuda cells $nb | skipped (dry run: they need a GPU)")
    elif ! command -v nbdev_test > /dev/null; then
        CELLS+=("cuda cells $nb | skipped: nbdev not installed (carry .whl)")
    else
        t=$SECONDS
        if out=$(timeout 180 nbdev_test --flags cuda --path "$nb" 2>&1); then r=ok; else r="FAIL: $(echo "$out" | tail -1)"; fi
        echo "$out" >> "$LOG"
        CELLS+=("cuda cells $nb | $r ($((SECONDS - t)) s)")
    fi
done

ARGS=(--json bench/_out/gpu.json)
[[ $DRY == 1 ]] && ARGS+=(--dry_run)
$PY bench/gpu.py "${ARGS[@]}" 2>&1 | tee -a "$LOG" | grep -v Warning | sed -n '/^$/,$p'
for c in "${CELLS[@]}"; do say "$c"; done
say "bench/gpu.sh done in $((SECONDS - START)) s (goal ≤ 480 s on the GPU machine)"
