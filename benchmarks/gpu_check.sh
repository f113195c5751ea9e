#!/usr/bin/env bash
# GPU check (< 5 minutes on one H100 once ddep's environment is installed): training-step
# throughput of both presets at 512x1024 in bf16 (img/s, counted FLOPs, TFLOP/s, MFU), the
# framework-overhead ratio on the GPU, and peak GPU memory.   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 4 --amp bf16 --iters 10 --rounds 2
"$py" benchmarks/train_step.py --preset tiny --size 512 1024 --batch 16 --amp bf16 --iters 10 --rounds 2
"$py" benchmarks/train_step.py --preset r50_vit_b16 --size 512 1024 --batch 4 --iters 5 --rounds 1
