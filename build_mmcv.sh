#!/usr/bin/env bash
# Build mmcv's wheel from its source against the torch of the given Python, into OUT_DIR.
#   bash build_mmcv.sh PYTHON VERSION OUT_DIR [SDIST]    (SDIST: mmcv-VERSION.tar.gz; default: download it)
# Used by install.sh, and by benchmarks/gpu_check.sh on a GPU machine with its own torch.
#  * mmsegmentation 1.2.2 needs mmcv < 2.2, and PyPI has only the sdist of mmcv 2.1.0.
#  * torch >= 2.10 headers need C++20, but mmcv 2.1.0's setup.py passes -std=c++17 (the last flag
#    wins), so that one flag is patched.
#  * mmcv's build imports torch, so it runs without build isolation, with PYTHON's torch.
#  * No debug information (-g0; Python's build flags add -g): compiling mmcv's ops takes 40%
#    less time and the wheel is a fraction of the size.
#  * CPU ops only by default (CUDA_VISIBLE_DEVICES=""): the TransUNet needs no mmcv CUDA kernel,
#    and a CPU build is the same on every machine, so one wheel serves laptops and GPU nodes.
#    DDEP_MMCV_CUDA=1 builds the CUDA kernels too (FORCE_CUDA=1) with the CUDA toolkit's nvcc, for
#    mmseg models whose heads call them on the GPU (docs/install.md lists them); build it on a
#    machine with the toolkit of PYTHON's torch ($CUDA_HOME/bin/nvcc, or nvcc on PATH;
#    TORCH_CUDA_ARCH_LIST picks the GPUs). Without nvcc it stops with one line.
#  * --dry-run (first argument): print what would be built and how, build nothing.
set -euo pipefail
dry=0
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
py=$1 version=$2 out=$3 sdist=${4:-}
if [ "${DDEP_MMCV_CUDA:-0}" = 1 ]; then
  nvcc_path=""  # $CUDA_HOME's, else the one on PATH
  for candidate in ${CUDA_HOME:+"$CUDA_HOME/bin/nvcc"} "$(command -v nvcc || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then nvcc_path=$candidate; break; fi
  done
  if [ -z "$nvcc_path" ]; then
    echo "build_mmcv.sh: DDEP_MMCV_CUDA=1 needs the CUDA toolkit's nvcc (neither in \$CUDA_HOME/bin nor on PATH); install the toolkit matching torch's CUDA or unset DDEP_MMCV_CUDA for the CPU build" >&2
    exit 2
  fi
  ops="CUDA and CPU ops (nvcc: $nvcc_path)"
  build_env=(FORCE_CUDA=1 CUDA_HOME="$(dirname "$(dirname "$nvcc_path")")")
else
  ops="CPU ops only"
  build_env=(CUDA_VISIBLE_DEVICES="")
fi
if [ "$dry" = 1 ]; then
  echo "would build mmcv $version with $ops: ${build_env[*]} MMCV_WITH_OPS=1 CFLAGS=-g0, wheel into $out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$sdist" ]; then
  "$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$version" -d "$work"
  sdist="$work/mmcv-$version.tar.gz"
fi
tar -xzf "$sdist" -C "$work"
sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$version/setup.py"
echo ">> mmcv $version: $ops"
(cd "$work/mmcv-$version" && env "${build_env[@]}" CFLAGS="${CFLAGS:-} -g0" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$py" -m pip wheel -q --no-build-isolation --no-deps . -w "$work/dist")
mkdir -p "$out"
wheel=$(basename "$work"/dist/mmcv-*.whl)
cp "$work/dist/$wheel" "$out/.$wheel.part"  # atomic: a killed build leaves no half wheel behind
mv "$out/.$wheel.part" "$out/$wheel"
