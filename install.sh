#!/usr/bin/env bash
# One-command install: bash install.sh [VENV_DIR]   (default: .venv)
#
# Why a script and not just `pip install -e .`:
#  * mmsegmentation 1.2.2 needs mmcv < 2.2, and PyPI has only the sdist of mmcv 2.1.0, so it is
#    built from source. torch >= 2.10 headers need C++20, but mmcv 2.1.0's setup.py passes
#    -std=c++17 (the last flag wins), so we patch that one flag before building.
#  * mmcv's build imports torch, so torch must be installed first (--no-build-isolation).
# The built wheel is cached in $DDEP_WHEEL_CACHE (default ~/.cache/ddep/wheels): the first install
# takes about 10-12 minutes on 2 cores, later ones about 2 minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv}"
cache="${DDEP_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddep/wheels}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3

pin() {  # exact version of a dependency, read from pyproject.toml (the single list of pins)
  "$py" - "$1" "$here/pyproject.toml" <<'PY'
import sys, tomllib
name, path = sys.argv[1], sys.argv[2]
deps = tomllib.load(open(path, "rb"))["project"]["dependencies"]
print(next(d.split("==")[1] for d in deps if d.split("==")[0] == name))
PY
}
torch_v=$(pin torch); tv_v=$(pin torchvision); mmcv_v=$(pin mmcv); st_v=$(pin setuptools)

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" -q --upgrade pip
"${pip[@]}" -q "setuptools==$st_v" wheel ninja "torch==$torch_v" "torchvision==$tv_v"

pyver=$("$venv/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheel_dir="$cache/mmcv-$mmcv_v-torch$torch_v-$pyver"
if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
  echo ">> building mmcv $mmcv_v from source (about 10 minutes on 2 cores; cached in $wheel_dir)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$venv/bin/python" -m pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$mmcv_v" -d "$work"
  tar -xzf "$work"/mmcv-"$mmcv_v".tar.gz -C "$work"
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$mmcv_v/setup.py"
  # CPU ops only (CUDA_VISIBLE_DEVICES=""): the TransUNet needs no mmcv CUDA kernel, and a CPU
  # build is the same on every machine, so one cached wheel serves laptops and GPU nodes.
  (cd "$work/mmcv-$mmcv_v" && CUDA_VISIBLE_DEVICES="" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$venv/bin/python" -m pip wheel -q --no-build-isolation --no-deps . -w "$work/dist")
  mkdir -p "$wheel_dir"
  cp "$work"/dist/mmcv-*.whl "$wheel_dir/.tmp.whl.part"
  mv "$wheel_dir/.tmp.whl.part" "$wheel_dir/$(basename "$work"/dist/mmcv-*.whl)"
fi
"${pip[@]}" -q --no-deps "$wheel_dir"/mmcv-*.whl
"${pip[@]}" -q -f "$wheel_dir" -e "$here"  # -f: the resolver sees the built mmcv wheel
echo ">> installed into $venv  (activate with: source $venv/bin/activate)"
