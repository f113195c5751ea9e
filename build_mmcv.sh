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
#  * CPU ops only (CUDA_VISIBLE_DEVICES=""): the TransUNet needs no mmcv CUDA kernel, and a CPU
#    build is the same on every machine, so one wheel serves laptops and GPU nodes.
set -euo pipefail
py=$1 version=$2 out=$3 sdist=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$sdist" ]; then
  "$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$version" -d "$work"
  sdist="$work/mmcv-$version.tar.gz"
fi
tar -xzf "$sdist" -C "$work"
sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$version/setup.py"
(cd "$work/mmcv-$version" && CFLAGS="${CFLAGS:-} -g0" CUDA_VISIBLE_DEVICES="" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$py" -m pip wheel -q --no-build-isolation --no-deps . -w "$work/dist")
mkdir -p "$out"
wheel=$(basename "$work"/dist/mmcv-*.whl)
cp "$work/dist/$wheel" "$out/.$wheel.part"  # atomic: a killed build leaves no half wheel behind
mv "$out/.$wheel.part" "$out/$wheel"
