#!/usr/bin/env bash
# SD 1.5 on one GPU, in one run (< 10 minutes):
#  1. correctness first: the `gpu` pytest smoke tests (tests/gpu: fp16 txt2img at 512², a batch
#     gives its jobs' solo images, compile on/off, cancel mid-denoise, VRAM back after unload);
#  2. speed: a plain diffusers loop vs Podium's SDHandler with batching (b=4, b=8) and with
#     torch.compile. sd15-random in fp16, 512x512, 25 steps, 16 images per variant; prints
#     images/s and s/image per variant (bench/gpu_sd.py does it) in the time that is left.
#  3. snapshot cold starts of a GPU worker (docs/snapshots.md; untested until a GPU is lent):
#     when run as root with CRIU >= 4 (PODIUM_CRIU, criu on PATH, or tools/build-criu.sh's
#     cache: carry it, the device machine has no network) and NVIDIA's cuda-checkpoint, and
#     GPU_SH_SNAPSHOT=1: bench/fleet_cold.py --fleets snapshot --cases tiny (the tiny SD
#     worker on the GPU, started vs restored through CRIU's CUDA plugin), at most 150 s,
#     before step 2.
# GPU_SH_SKIP_TESTS=1 skips step 1.
#
# Installs nothing. Uses $PYTHON, else .venv/bin/python, else python3; that interpreter needs
# torch (CUDA), diffusers, transformers, pillow. Extra arguments go to bench/gpu_sd.py, e.g.
#   bench/gpu.sh --no-compile          bench/gpu.sh --steps 50 --images 32
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
    py=$PYTHON
elif [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
else
    py=python3
fi

if ! "$py" -c 'import torch, diffusers, transformers, PIL; assert torch.cuda.is_available()' 2>/dev/null; then
    echo "gpu.sh: $py lacks torch with CUDA, diffusers, transformers or pillow; nothing installed." >&2
    "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' >&2 || true
    exit 2
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
export TORCH_LOGS="${TORCH_LOGS:-recompiles}"  # a recompile inside a timed run shows up here
# The whole run, compile included, must end within 10 minutes (585 s): the tests get at most
# 240 s; gpu_sd.py plans for what is left (less 45 s) and skips what would not fit; each
# timeout is a backstop.
started=$SECONDS
tests=skipped
if ! "$py" -c 'import pytest' 2>/dev/null; then
    tests="skipped (no pytest in $py)"
elif [[ -z "${GPU_SH_SKIP_TESTS:-}" ]]; then
    if timeout --signal=INT --kill-after=15 240 "$py" -m pytest -q -p no:cacheprovider \
        -m gpu tests/gpu -rs; then
        tests=passed
    else
        tests="FAILED (rc $?)"  # the benchmark still runs: its figures help read the failure
    fi
fi
snapshot=skipped
if [[ -n "${GPU_SH_SNAPSHOT:-}" ]]; then
    if timeout --signal=INT --kill-after=15 150 "$py" bench/fleet_cold.py --fleets snapshot \
        --cases tiny --runs 3; then
        snapshot=ran
    else
        snapshot="FAILED (rc $?)"
    fi
fi
left=$((585 - (SECONDS - started)))
rc=0
timeout --signal=INT --kill-after=15 "$left" "$py" bench/gpu_sd.py --budget-s $((left - 45)) "$@" \
    || rc=$?
echo "gpu.sh: smoke tests $tests; snapshots $snapshot; benchmark rc $rc; $((SECONDS - started)) s in all"
[[ $tests == passed || $tests == skipped* ]] && exit $rc
exit 1
