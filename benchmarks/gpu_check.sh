#!/usr/bin/env bash
# GPU check (estimated at 8 minutes on one H100 once ddep's environment is installed), baseline and
# fast path in the same run: training-step throughput of both presets at 512x1024 in bf16
# (img/s, counted FLOPs, TFLOP/s, MFU, peak memory, overhead vs plain PyTorch, the loss
# difference from the baseline), a larger batch, fp32, and the data loader on 2048x1024 images.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 4 --amp bf16 --iters 10 --rounds 2 \
    --variants base channels_last compile channels_last+compile
"$py" benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 16 --amp bf16 --iters 5 --rounds 2 \
    --variants base channels_last+compile
"$py" benchmarks/train_step.py --preset tiny --size 512 1024 --batch 16 --amp bf16 --iters 10 --rounds 2 \
    --variants base channels_last+compile
"$py" benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 4 --iters 5 --rounds 1
"$py" benchmarks/data_loader.py --fake 16 --workers 1 4 8 --batches 10
