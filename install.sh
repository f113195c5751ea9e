#!/usr/bin/env bash
# One-command install: bash install.sh [VENV_DIR]   (default: .venv)
# Optional extras of pyproject.toml, comma-separated: DDEP_EXTRAS=mmpretrain bash install.sh
# mmcv's CUDA kernels too (for mmseg models whose heads need them on GPUs; needs nvcc):
#   DDEP_MMCV_CUDA=1 bash install.sh   (default: CPU ops only, one wheel for every machine)
#
# Why a script and not just `pip install -e .`: mmcv 2.1.0 (what mmsegmentation 1.2.2 needs) is
# built from its source against the installed torch (build_mmcv.sh says why and how), so torch is
# installed first. The built wheel is cached in $DDEP_WHEEL_CACHE (default ~/.cache/ddep/wheels):
# the first install takes about 11 minutes on 2 cores (AMD EPYC), later ones about 2 minutes.
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
ops=cpu; [ "${DDEP_MMCV_CUDA:-0}" = 1 ] && ops=cuda  # a CUDA build is cached apart from the CPU one
wheel_dir="$cache/mmcv-$mmcv_v-torch$torch_v-$pyver"
[ "$ops" = cpu ] || wheel_dir="$wheel_dir-$ops"
if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
  echo ">> building mmcv $mmcv_v from source (about 9 minutes on 2 cores; cached in $wheel_dir)"
  bash "$here/build_mmcv.sh" "$venv/bin/python" "$mmcv_v" "$wheel_dir"
fi
"${pip[@]}" -q --no-deps "$wheel_dir"/mmcv-*.whl
extras="${DDEP_EXTRAS:+[$DDEP_EXTRAS]}"
"${pip[@]}" -q -f "$wheel_dir" -e "$here$extras"  # -f: the resolver sees the built mmcv wheel
echo ">> installed into $venv  (activate with: source $venv/bin/activate)"
