#!/usr/bin/env bash
# GPU check: the baseline and the fast path measured in the same run, on one GPU, in at most
# 10 minutes (stage limits 450 s; up to 2.5 minutes more to build mmcv where a bundle is carried):
#  1. r50_vit_b16, 512x1024, bf16, batch 4: baseline and channels_last, then baseline, compile
#     and both (the compiling variants in a run of their own, so that a slow compile loses only
#     them). Each prints img/s, counted FLOPs, TFLOP/s, MFU, peak memory, the overhead against
#     plain PyTorch (baseline) and the loss difference from the baseline;
#  2. the same at batch 16: baseline and both options;
#  3. the data loader on 2048x1024 Cityscapes-shaped images with 1, 4 and 8 workers.
# Each stage has a time limit and a failed stage does not stop the next; everything printed also
# goes to $OUT/gpu_check.log (or /tmp/gpu_check.log).
#   bash benchmarks/gpu_check.sh                  # in ddep's environment
#   bash benchmarks/gpu_bundle.sh; (carry .whl;) bash benchmarks/gpu_check.sh
#                                                 # a machine with torch and no package index
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python3}
exec > >(tee -a "${OUT:-/tmp}/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1

source benchmarks/gpu_env.sh  # a bundle (gpu_bundle.sh), if carried, installed beside torch

stage() {  # stage SECONDS COMMAND...: run it with a time limit; report a failure and go on
  local limit=$1 start=$SECONDS rc=0
  shift
  echo ">> $*"
  timeout "$limit" "$@" || rc=$?
  echo ">> rc $rc after $((SECONDS - start)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
"$py" -c 'import torch, timm, mmcv, mmengine, mmseg; print("torch", torch.__version__, "timm", timm.__version__,
"mmcv", mmcv.__version__, "mmengine", mmengine.__version__, "mmseg", mmseg.__version__)'
r50=(benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --amp bf16 --overhead first)
stage 60 "$py" "${r50[@]}" --batch 4 --iters 10 --rounds 2 --variants base channels_last
stage 200 "$py" "${r50[@]}" --batch 4 --iters 10 --rounds 2 --variants base compile channels_last+compile
stage 120 "$py" "${r50[@]}" --batch 16 --iters 5 --rounds 2 --variants base channels_last+compile
stage 70 "$py" benchmarks/data_loader.py --fake 16 --workers 1 4 8 --batches 10
