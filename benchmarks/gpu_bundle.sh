#!/usr/bin/env bash
# Packs what benchmarks/gpu_check.sh needs on a GPU machine that has PyTorch but no package
# index: ddep's pure-Python dependencies as wheels, at the versions installed here, and mmcv's
# source (gpu_check.sh builds it there against that machine's torch), into .whl/ (git-ignored,
# about 7 MB). Carry .whl with the working tree, then run gpu_check.sh there.
#   bash benchmarks/gpu_bundle.sh [PYTHON_VERSION]      (the GPU machine's Python; default 3.12)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python}
target=${1:-3.12}
pins=$("$py" - mmengine mmsegmentation timm ftfy wcwidth prettytable addict yapf platformdirs termcolor <<'PY'
import sys
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
PY
)
mmcv=$("$py" -c 'from importlib.metadata import version; print(version("mmcv"))')
rm -rf .whl.part && mkdir .whl.part
# shellcheck disable=SC2086  # one argument per pin
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$target" \
  --implementation cp --platform any -d .whl.part $pins
"$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: -d .whl.part "mmcv==$mmcv"
rm -rf .whl && mv .whl.part .whl
echo ">> .whl: $(ls .whl | wc -l) files, $(du -sh .whl | cut -f1) (for Python $target)"
