#!/usr/bin/env bash
# Outcome-neutral probes of the built-in miniature's design (docs/tuning.md, section 11): how well
# random init learns the street scenes, and how well the supervised stand-in learns the source
# set, for a generator design given as overrides of ddep.data.procedural.Difficulty.
#
#   DIFFICULTY='{"shuffle_p": 0.6}' benchmarks/learnability.sh data DIR [SEED]
#       street scenes (150 train, 100 val) and source set (3,600 / 480) into DIR/data, and the
#       splits "all" and "1/30" of development seed SEED (default 100) into DIR
#   benchmarks/learnability.sh finetune DIR FRACTION ITERS SEED [ddep finetune args...]
#       one random-init fine-tune (FRACTION: all or 1_30); prints mIoU, per-class IoU, CPU time
#   benchmarks/learnability.sh standin DIR [ddep pretrain-supervised args...]
#       the supervised stand-in on DIR's source set; prints its held-out top-1 and CPU time
#   benchmarks/learnability.sh denoise DATA ARM ITERS SEED OUT_DIR [ddep pretrain-denoise args...]
#       one denoising pretraining (ARM dep: DATA's train images, held out on its development
#       scenes; ddep: its source images with the stand-in DATA/../../weights/.../supervised, held
#       out on the source val images); prints its final and held-out loss and CPU time
set -euo pipefail
cmd=$1; D=$2; shift 2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$D"
case $cmd in
data)
  seed=${1:-100}
  echo "${DIFFICULTY:-"{}"}" > "$D/difficulty.json"
  python - "$D" <<'PY'
import dataclasses, json, pathlib, sys
from ddep.data import generate_builtin, procedural
D = pathlib.Path(sys.argv[1])
changes = json.loads((D / "difficulty.json").read_text())
procedural.DIFFICULTY = dataclasses.replace(
    procedural.DIFFICULTY, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})
generate_builtin(D / "data", seed=0, n_train=150, n_val=100, n_dev=50, dev_seed=1)
PY
  for f in all 1/30; do
    ddep split --dataset builtin --data-root "$D/data" --fraction $f --seed "$seed" \
      --out "$D/split_${f//\//_}_seed$seed.txt" >/dev/null
  done ;;
finetune)
  fraction=$1 iters=$2 seed=$3; shift 3
  tag=${fraction}_${iters}_seed$seed${*:+_$(echo "$*" | tr -c 'a-zA-Z0-9.-' _)}
  /usr/bin/time -f %U -o "$D/$tag.cpu" ddep finetune --arm none --dataset builtin \
    --data-root "$D/data" --split "$D/split_${fraction}_seed$seed.txt" --label-fraction "$fraction" \
    --seed "$seed" --iters "$iters" --channels-last --out "$D/$tag.json" --work-dir "$D/work/$tag" \
    "$@" > "$D/$tag.log" 2>&1
  python - "$D/$tag" <<'PY'
import json, sys
run, cpu = json.load(open(sys.argv[1] + ".json")), open(sys.argv[1] + ".cpu").read().split()[-1]
ious = " ".join(f"{k}={v:.0f}" for k, v in run["per_class_iou"].items())
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: mIoU {run['mIoU']:.2f}, aAcc {run['aAcc']:.1f}, "
      f"{cpu} s CPU; {ious}")
PY
  ;;
standin)
  tag=standin${*:+_$(echo "$*" | tr -c 'a-zA-Z0-9.-' _)}
  /usr/bin/time -f %U -o "$D/$tag.cpu" ddep pretrain-supervised --data-root "$D/data" \
    --out "$D/$tag.safetensors" --work-dir "$D/work/$tag" --channels-last "$@" > "$D/$tag.log" 2>&1
  echo "$tag: $(tail -1 "$D/$tag.log"), $(tail -1 "$D/$tag.cpu") s CPU" ;;
denoise)
  # here D is the data root (e.g. resources/data/builtin, generated with development scenes)
  arm=$1 iters=$2 seed=$3 out=$4; shift 4
  mkdir -p "$out"
  tag=${arm}_${iters}_seed$seed
  case $arm in
  dep) images=(--heldout "$D/img_dir/dev") ;;
  ddep) images=(--unlabelled "$D/source/train" --image-crop 64 64 --heldout "$D/source/val"
                --encoder-weights "${ENCODER:?set ENCODER to the stand-in (supervised.safetensors)}") ;;
  esac
  /usr/bin/time -f %U -o "$out/$tag.cpu" ddep pretrain-denoise --arm "$arm" --dataset builtin \
    --data-root "$D" "${images[@]}" --iters "$iters" --seed "$seed" --channels-last \
    --out "$out/$tag.pth" --work-dir "$out/work/$tag" "$@" > "$out/$tag.log" 2>&1
  echo "$tag: $(tail -1 "$out/$tag.log"), $(tail -1 "$out/$tag.cpu") s CPU" ;;
*) echo "unknown command $cmd (data, finetune, standin, denoise)" >&2; exit 2 ;;
esac
