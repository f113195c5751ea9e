"""``docs/protocol.md``: the experiment, element by element: what the paper states (and where it
says so), what ddep does, why, and the key that changes it.

The "ddep does" column is computed here from ``config/paper.yaml``, the schedule and dataset
files and the code's defaults, so it cannot drift from them; a row whose method no config
changes (split sampling, statistics) is fixed text and says so on the page:
``ddep protocol --out docs/protocol.md`` rewrites the page, and a test fails while the
committed page differs from what this module makes of today's files.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ddep.analysis.common import arm_display
from ddep.configs import dataset_file, schedule_file, slide_stride
from ddep.data.splits import split_size
from ddep.sweep import (ABLATION_ARMS, ABLATIONS, LOSSES, PRESET_ARMS, SUPERVISED, NoiseSetting,
                        ablation_settings, arm_images, arm_table, conditioning_label, finetune_jobs,
                        parse_sigma, pretraining_parts, sweep_arms, sweep_models)
from ddep.sweep_config import crop_size, dataset_of, encoder_weights, gpus, load_config, stage_schedule, unlabelled_crop

REPO = Path(__file__).resolve().parent.parent
PAPER_CONFIG = REPO / "config" / "paper.yaml"

# Where the "paper states" column comes from. The paper's own text was not at hand; these are
# what could be read of it.
SOURCES = {
    "A": "the abstract (arXiv 2205.11423; TMLR 09/2022)",
    "W": "the abstract of the workshop version, *Denoising Pretraining for Semantic "
         "Segmentation* (CVPR 2022 Workshops, L3D-IVU)",
    "S": "a published summary of the paper (a Chinese-language reading note, e.g. "
         "7code.cn/show_5561.html), describing its method and noise figure",
    "F": "the paper's figures (the label-efficiency curves and the noise figure) as described "
         "to the project: a reading of the figures, not of the paper's text",
    "R": "the reference reimplementation bwconrad/decoder-denoising (configs/dep.yaml, "
         "configs/ddep.yaml, src/model.py, src/data.py): denoising pretraining only, on a "
         "segmentation_models_pytorch U-Net",
}


FIXED = "*(fixed text: the code's method, the same for every config)*"


@dataclass(frozen=True)
class Row:
    element: str
    paper: str          # with [source] codes; "not stated" where no source says
    does: Callable[[dict], str] | str  # from the config (and the files it names), or fixed text
    why: str
    key: str


def _optimizer(sched: dict) -> str:
    opt = sched["optim_wrapper"]["optimizer"]
    extra = [f"{k} {v}" for k, v in opt.items() if k in ("weight_decay",)]
    mult = ((sched["optim_wrapper"].get("paramwise_cfg") or {}).get("custom_keys") or {}).get("backbone")
    if mult:
        extra.append(f"encoder LR x{mult['lr_mult']}")
    steps = {s["type"]: s for s in sched["param_scheduler"]}
    warm = steps.get("LinearLR", {}).get("end", 0)
    return (f"{opt['type']} LR {opt['lr']:g} ({', '.join(extra)}); linear warm-up {warm:,} "
            f"iterations, then linear decay to 0")


def _per_dataset(config: dict, fn: Callable[[str], str]) -> str:
    return "; ".join(f"{ds}: {fn(ds)}" for ds in config["datasets"])


def _does_architecture(c: dict) -> str:
    return ", ".join(f"`{m.name}` (`{m.config}`)" for m in sweep_models(c))


def _does_encoder(c: dict) -> str:
    weights = dict.fromkeys(str(encoder_weights(c, ds, m)) for ds in c["datasets"] for m in sweep_models(c))
    supervised = [a.name for a in PRESET_ARMS.values() if a.encoder == SUPERVISED]
    own = "".join(f"; {a.name}: {a.describe()}" for a in sweep_arms(c) if a.name not in PRESET_ARMS)
    return (f"{', '.join(f'`{w}`' for w in weights)} for {', '.join(map(arm_display, supervised))} "
            f"(DDeP: frozen while its decoder is pretrained); DeP and random init start from random" + own)


def _does_unlabelled(c: dict) -> str:
    def one(ds: str) -> str:
        arms = arm_table(c)
        folders = {name: arm_images(c["datasets"][ds], arm, arms.values())[0]
                   for name, arm in arms.items() if arm.denoised}
        return ", ".join(f"{arm_display(arm)}: " + (f"`{folder}`" if folder else
                                                    "the dataset's own train images (labels unused)")
                         for arm, folder in folders.items())
    texts = dict.fromkeys(one(ds) for ds in c["datasets"])
    return "; ".join(texts) if len(texts) == 1 else _per_dataset(c, one)


def _noise(c: dict) -> NoiseSetting:
    return NoiseSetting.from_config(c["denoising"])


def _does_formulation(c: dict) -> str:
    form = _noise(c).formulation
    return {"unscaled": "unscaled, x + σε", "scaled": "scaled, √γ·x + √(1−γ)·ε, γ = 1/(1+σ²)"}[form] + \
        " (images in [−1, 1])"


def _does_sigma(c: dict) -> str:
    sigma = _noise(c).sigma
    return f"σ = {sigma}, fixed" if parse_sigma(sigma)[0] == "fixed" else f"σ ~ {sigma}, drawn per image"


def _does_target(c: dict) -> str:
    return f"predict {'ε (the noise)' if _noise(c).target == 'eps' else 'x (the clean image)'}; " \
           f"{LOSSES[0].upper()} loss; decoder conditioned on σ: {_noise(c).noise_conditioning}"


def _does_pretraining(c: dict) -> str:
    def one(ds: str) -> str:
        s = stage_schedule(c, ds, "denoise")
        n_gpus = gpus(c, "pretrain_denoise")
        batch = s["train_dataloader"]["batch_size"]
        own = {arm: stage_schedule(c, ds, "denoise", arm) for arm in (c["datasets"][ds].get("denoise_schedule") or {})}
        by_arm = "".join(f"; {arm_display(arm)}: {o['train_cfg']['max_iters']:,} at lr "
                         f"{o['optim_wrapper']['optimizer']['lr']:g}" for arm, o in own.items())
        return (f"{s['train_cfg']['max_iters']:,} iterations x batch {batch} per GPU x {n_gpus} GPU(s) "
                f"= global batch {batch * n_gpus} (`{schedule_file(ds, 'denoise').name}`"
                f"{', `denoise_schedule` per arm' + by_arm if own else ''})")
    texts = dict.fromkeys(one(ds) for ds in c["datasets"])
    return "every dataset: " + next(iter(texts)) if len(texts) == 1 else _per_dataset(c, one)


def _does_finetune(c: dict) -> str:
    def one(ds: str) -> str:
        s = stage_schedule(c, ds, "finetune")
        return (f"{s['train_cfg']['max_iters']:,} x batch {s['train_dataloader']['batch_size'] * gpus(c, 'finetune')} "
                f"(`{schedule_file(ds, 'finetune').name}`)")
    return _per_dataset(c, one)


def _does_optim(stage: str) -> Callable[[dict], str]:
    def does(c: dict) -> str:
        texts = {ds: _optimizer(stage_schedule(c, ds, stage)) for ds in c["datasets"]}
        if len(set(texts.values())) == 1:
            return "every dataset: " + next(iter(texts.values()))
        return "; ".join(f"{ds}: {t}" for ds, t in texts.items())
    return does


def _pipeline(ds: str) -> list[dict]:
    from mmengine.config import Config
    return Config.fromfile(str(dataset_file(ds))).train_dataloader.dataset.pipeline


def _does_crop(c: dict) -> str:
    def one(ds: str) -> str:
        h, w = crop_size(c, ds)
        steps = []
        for step in _pipeline(ds):
            if step["type"] == "RandomResize":
                lo, hi = step["ratio_range"]
                steps.append(f"random resize x{lo:g}–{hi:g} of {step['scale'][0]}x{step['scale'][1]}")
            elif step["type"] == "RandomFlip":
                steps.append(f"flip p={step['prob']:g}")
            elif step["type"] == "PhotoMetricDistortion":
                steps.append("photometric jitter")
        return f"{h}x{w}, {', '.join(steps)}"
    def cut(ds: str) -> str:
        crops = {arm.name: unlabelled_crop(c, ds, arm.name) for arm in sweep_arms(c) if arm.denoised}
        return ", ".join(f"{arm_display(arm)}: random {h}x{w} crops of its images (the model resamples its position "
                         f"embedding)" for arm, (h, w) in ((a, cr) for a, cr in crops.items() if cr))
    cuts = dict.fromkeys(cut(ds) for ds in c["datasets"])
    denoising = "; denoising: the same geometry without photometric jitter"
    if any(cuts):
        denoising += ", except " + (next(iter(cuts)) if len(cuts) == 1 else _per_dataset(c, cut))
    return _per_dataset(c, one) + denoising


def _does_precision(c: dict) -> str:
    return (f"`{c.get('amp', 'none')}` autocast; GPUs per job: pretraining {gpus(c, 'pretrain_denoise')}, "
            f"fine-tune {gpus(c, 'finetune')} (DDP, SyncBN)")


def _does_evaluation(c: dict) -> str:
    def one(ds: str) -> str:
        crop = crop_size(c, ds)
        stride = slide_stride(crop)
        return f"window {crop[0]}x{crop[1]}, stride {stride[0]}x{stride[1]}"
    return "single-scale sliding window, no flip, mIoU on the val split at the label maps' size: " + \
        _per_dataset(c, one)


def _does_fractions(c: dict) -> str:
    def one(ds: str) -> str:
        size = dataset_of(c, ds).train_images
        return ", ".join(f"{f} ({split_size(f, size):,})" if size else str(f)
                         for f in c["datasets"][ds]["fractions"])
    return _per_dataset(c, one) + " (images of the release's train set)"


def _does_tuning(c: dict) -> str:
    tuning = c.get("tuning")
    if not tuning:
        return ("no tuning stage: every arm fine-tunes at its schedule file's setting, the same for "
                "all arms. A `tuning` section adds one: each dataset x fraction x arm fine-tuned at "
                "every grid point on development seeds, evaluated on a development split (generated "
                "data: its own development scenes; a paper dataset: a fixed slice of "
                "`development.n_images` train images, ranked by SHA-256 of (dataset, name), that no "
                "labelled split contains), the best mean development mIoU selected (ddep.tuning.RULE)")
    grid = ", ".join(f"{k} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for k, vs in tuning["grid"].items())
    return (f"every arm alike: {grid} on development seeds {tuning['seeds']}, evaluated on each "
            f"dataset's development split; each cell's best mean development mIoU is selected "
            f"into `{tuning['selection']}`, which the held-out fine-tunes read")


def _does_seeds(c: dict) -> str:
    special = {ds: d["fraction_seeds"] for ds, d in c["datasets"].items() if d.get("fraction_seeds")}
    return f"seeds {c['seeds']} for every cell" + (f"; except {special}" if special else "")


def _does_study(c: dict) -> str:
    default = _noise(c)
    parts = []
    for block in c.get("ablations") or []:
        settings = ablation_settings(block, default)
        sigmas = ", ".join(dict.fromkeys(s.sigma for s in settings))
        varied = [("σ-conditioned " if a == "noise_conditioning" else f"{a} ") +
                  "/".join(conditioning_label(v) if a == "noise_conditioning" else str(v)
                           for v in block[a])
                  for a in ("formulation", "target", "noise_conditioning") if a in block]
        what = ", ".join([f"σ ∈ {{{sigmas}}}", *varied])
        parts.append(f"{'/'.join(map(arm_display, block.get('arms', ABLATION_ARMS)))} on "
                     f"{', '.join(block.get('datasets', list(c['datasets'])))} at "
                     f"{', '.join(block['fractions'])}: {what}")
    if not parts:
        return "no ablations"
    added = sum(1 for part in pretraining_parts(c).values() if part == ABLATIONS)
    runs = sum(1 for j in finetune_jobs(c) if j["part"] == ABLATIONS)
    return "; ".join(parts) + f" ({added} pretrainings and {runs} fine-tunes beyond the grid)"


ROWS: list[Row] = [
    Row("architecture",
        "a Transformer-based U-Net [W]; encoder ResNet-50 + ViT-B/16 hybrid (TransUNet) with a "
        "U-Net-style cascaded decoder [S]. [R] uses a CNN U-Net (ResNet-50 encoder) instead",
        _does_architecture,
        "the paper's model; `tiny` (same layers, small widths) is for the CPU-sized built-in run",
        "`models` or `preset` (config), `--model`"),
    Row("encoder weights (21K, DDeP)",
        "supervised ImageNet-21K pretraining of the encoder [W, S]; DDeP keeps it frozen while the "
        "decoder is pretrained [A, W, S]",
        _does_encoder,
        "timm's `vit_base_r50_s16_224.orig_in21k` is the public in21k checkpoint of this hybrid",
        "`datasets.<name>.encoder_weights`, `--encoder-weights`"),
    Row("unlabelled data per arm",
        "DDeP: decoder denoising pretraining on ImageNet [A]; ImageNet-21K per [S]. DeP: not stated "
        "in the sources read",
        _does_unlabelled,
        "DDeP as the abstract says (any ImageNet-style folder; [S]'s 21K works too); DeP on the "
        "target's own images needs no extra download",
        "`datasets.<name>.unlabelled` (`{dep: ..., ddep: ...}`), `--unlabelled`"),
    Row("noise formulation",
        "simple (x + σε) and scaled, variance-preserving, additive noise compared; scaled "
        "better in [S]'s reading; [R] defaults to scaled",
        _does_formulation,
        "differs from [S] and [R]: ddep's default until the paper's own text settles it; the σ "
        "study runs both formulations at every fixed σ, so the data can decide",
        "`denoising.formulation`, `--formulation`"),
    Row("noise level σ",
        "best near σ = 0.2 [F]; about 0.22 in the noise figure [S]; [R] uses 0.22. Fixed σ "
        "compared with σ ~ U(0.2, 0.3) [F]",
        _does_sigma,
        "the paper's best value, rounded as [F] reads it",
        "`denoising.sigma` (number, or `[a, b]` for U(a, b)), `--sigma`"),
    Row("target, loss, conditioning",
        "predict the noise ε rather than the image x [S, R]; L2 loss [R]; conditioning on σ: "
        "not stated",
        _does_target,
        "as the sources say; conditioning is off since a fixed σ gives the decoder nothing to use",
        "`denoising.target`, `denoising.noise_conditioning`; `--target`, `--loss`, "
        "`--noise-conditioning`"),
    Row("pretraining schedule and batch",
        "not stated in the sources read; [R]: 100 epochs, batch 256, crop 224",
        _does_pretraining,
        "mmseg-scale schedule sized to the fine-tunes; the per-GPU batch fits a 512x1024 crop of "
        "`r50_vit_b16` on one GPU",
        "`schedule.denoise.{iters,batch_size}`, `resources.pretrain_denoise.gpu`; `--iters`, "
        "`--batch-size`"),
    Row("pretraining optimizer and LR",
        "not stated; [R]: Adam, LR 1e-4, no weight decay, cosine decay, fp16",
        _does_optim("denoise"),
        "AdamW as in ViT training; linear decay as mmseg's poly schedules",
        "`schedule.denoise.lr`, `--lr`, `--cfg-options optim_wrapper...`"),
    Row("fine-tune schedule and batch",
        "not stated in the sources read",
        _does_finetune,
        "the lengths of mmseg's schedule_80k (Pascal Context, Cityscapes) and schedule_160k "
        "(ADE20K); a smaller batch for Cityscapes' larger crops",
        "`schedule.finetune.{iters,batch_size}`, `ddep/configs/_base_/schedules/<dataset>_finetune.py`"),
    Row("fine-tune optimizer and LR",
        "not stated",
        _does_optim("finetune"),
        "AdamW as in TransUNet-style ViT fine-tuning, instead of mmseg's SGD",
        "`schedule.finetune.{lr,encoder_lr_mult}`, `--lr`, `--encoder-lr-mult`"),
    Row("tuning of the fine-tune",
        "not stated (how the fine-tune settings were chosen, and on which images)",
        _does_tuning,
        "one rule and one tuning budget for every arm, the random-init baseline included (Oliver et "
        "al. 2018), on images that results never report; the best learning rate of a fine-tune "
        "depends on the data and the initialisation (Li et al. 2020)",
        "`tuning` (config), `datasets.<name>.development`; `snakemake tune`"),
    Row("crop and augmentation",
        "not stated; [R] (pretraining only): random 224 crop and horizontal flip",
        _does_crop,
        "mmseg's standard pipelines and crops for these datasets; DDeP's ImageNet images at ImageNet's own 224x224, "
        "as [R] crops them, rather than the target's geometry (each choice priced in docs/cluster.md)",
        "`datasets.<name>.crop_size`, `--crop-size`; `datasets.<name>.unlabelled_crop`, `--image-crop`; pipelines "
        "in `ddep/configs/_base_/datasets/`"),
    Row("precision and GPUs",
        "not stated; [R]: fp16",
        _does_precision,
        "bf16 keeps fp32's range; the GPU count sets the global batch",
        "`amp`, `resources.<rule>.gpu`; `--amp`"),
    Row("evaluation",
        "mIoU [A]; inference mode not stated",
        _does_evaluation,
        "as mmseg's configs evaluate ViT models at these crops: the position embedding stays at "
        "its trained size",
        "follows `crop_size`; `--cfg-options model.test_cfg...`"),
    Row("label fractions",
        "label-efficiency curves on Cityscapes and Pascal Context (Figure 1) [F]; gains on "
        "Cityscapes, Pascal Context and ADE20K [A]; the exact fractions: not stated in the "
        "sources read",
        _does_fractions,
        "Cityscapes: the semi-supervised literature's fractions; the others from 1/16, where a "
        "fraction still holds a few hundred images",
        "`datasets.<name>.fractions` (fractions or image counts)"),
    Row("split sampling",
        "not stated",
        "labelled images ranked by SHA-256 of (dataset, seed, name); the first "
                  "⌈fraction × N⌉ taken: the same on every machine, nested across fractions",
        "reproducible without a random-number generator; nested splits make fractions comparable",
        "`ddep split`; `seeds`"),
    Row("seeds",
        "not stated",
        _does_seeds,
        "a few seeds bound the cost; the tables give the CI width they buy",
        "`seeds`, `datasets.<name>.fraction_seeds`, `ablations[].seeds`"),
    Row("statistics",
        "not stated",
        "mean ± 95% t-interval over seeds; paired differences over matched seeds; "
                  "a claim holds when its interval is above 0",
        "seeds are paired (same split), so paired differences are the sharper test",
        "`ddep aggregate` (`ddep/analysis/claims.py`)"),
    Row("the σ study",
        "DeP on Pascal Context and ADE20K: fixed σ against σ ~ U(0.2, 0.3), mIoU against σ, best "
        "near 0.2; one panel per dataset [F]",
        _does_study,
        "the paper's arm and datasets; at the grid's smallest fraction, where pretraining matters "
        "most and the default setting's runs are the grid's own; the x-target and conditioning "
        "rows on the same datasets and fraction, so every row is paired with the same default "
        "runs; no Cityscapes ablations (none in the paper; each setting is a full pretraining)",
        "`ablations` (config)"),
]


def render(config: dict, config_name: str = "config/paper.yaml") -> str:
    """The whole page for ``config``."""
    lines = [
        "# The protocol: what the paper states, what ddep does",
        "",
        f"<!-- made by `ddep protocol --out docs/protocol.md` from {config_name}, the schedule and "
        "dataset files; do not edit by hand: tests/test_protocol.py fails while it differs -->",
        "",
        f"One row per element of the experiment as `{config_name}` runs it. *Paper states*: "
        "what the sources below say, with their letter; \"not stated\" where none says. "
        "*ddep does*: computed from the config and the files it names, except the rows marked "
        f"{FIXED}. The built-in default run "
        "(`config/config.yaml`) changes the data, the preset (`tiny`) and the schedules "
        "(`builtin_*.py`), nothing else.",
        "",
        "| element | paper states | ddep does | why | changed by |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        does = row.does(config) if callable(row.does) else f"{row.does} {FIXED}"
        cells = [row.element, row.paper, does, row.why, row.key]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Sources:", ""]
    lines += [f"- [{k}] {v}" for k, v in SOURCES.items()]
    return "\n".join(lines) + "\n"


def load_paper_config(path: Path = PAPER_CONFIG) -> dict:
    return load_config([str(path)])


# --- the README's box above the cluster checklist: what has run where, what never has ----------------------------

PEAK_TFLOPS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


def _peak_tflops(gpu: str, amp: str) -> float:
    """The GPU's dense peak as benchmarks/train_step.py's PEAK_TFLOPS has it (the MFU it printed)."""
    import ast
    tree = ast.parse(PEAK_TFLOPS_FILE.read_text())
    [table] = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.AnnAssign)
               and getattr(node.target, "id", "") == "PEAK_TFLOPS"]
    return table[gpu][amp]


def _row(element: str) -> Row:
    return next(r for r in ROWS if r.element == element)


def cluster_box(config_name: str = "config/paper.yaml") -> str:
    """What has run on which hardware and what never has, for the README's cluster section: the GPU measurements
    from benchmarks/throughput.csv (MFU from benchmarks/step_cost.csv's counted FLOPs), the deviations and their
    keys from the protocol's rows."""
    from ddep.estimate import read_step_costs, read_throughputs
    config = load_config([config_name])
    preset = config.get("preset", "r50_vit_b16")
    gflop = {(r["preset"], int(r["crop_h"]), int(r["crop_w"])): float(r["gflop_per_image"])
             for r in read_step_costs() if r["step"] == "finetune"}
    gpu_rows = []
    for r in read_throughputs():
        crop = (int(r["crop_h"]), int(r["crop_w"]))
        mfu = ""
        if (r["preset"], *crop) in gflop:
            tflops = float(r["img_per_s"]) * gflop[(r["preset"], *crop)] / 1e3
            mfu = f", {tflops / _peak_tflops(r['gpu'], r['amp']):.1%} MFU"
        gpu_rows.append(f"{r['gpu']} `{r['preset']}` {r['amp'] if r['amp'] != 'none' else 'fp32'} batch {r['batch']} "
                        f"at {crop[0]}x{crop[1]}: {r['img_per_s']} img/s{mfu} ({r['measured']})")
    [reference] = [g for g in gpu_rows if f"`{preset}` {config.get('amp')}" in g]
    formulation, precision = _row("noise formulation"), _row("precision and GPUs")
    crops = sorted({f"{c[0]}x{c[1]}" for ds in config["datasets"] if (c := unlabelled_crop(config, ds, "ddep"))})
    key = lambda row, sep: row.key.split(sep)[0].strip("`")  # noqa: E731  (the row's first key)
    lines = [
        f"> **Before the GPU-hours: what has run where, and what never has** (generated by `ddep readme` from "
        f"`benchmarks/throughput.csv`, `benchmarks/step_cost.csv` and the protocol's rows for `{config_name}`)",
        ">",
        f"> * **One GPU measurement prices the paper grid's estimate:** {reference}. Every other crop and model is "
        "scaled from it (by pixels, by counted FLOPs); the speed options meant to raise the MFU have not run on a GPU.",
        "> * **Never run on a GPU:** multi-GPU training of `r50_vit_b16` (DDP under `torchrun` with NCCL and "
        "SyncBN). Only its CPU form has run: 2 processes with gloo and plain BN (`tests/test_distributed.py`).",
        "> * **Run on CPUs only:** everything else — the default grid, the noise ablations, the three-model run and "
        "the tests (AMD EPYC, 2 cores, `avx512_bf16`, no AMX); the paper grid ran only as a 2-iteration `tiny` "
        "smoke run on real-shaped fake datasets.",
        "> * **The protocol rests on** " + ", ".join(SOURCES[k].split(" (")[0] for k in ("A", "S", "F"))
        + " and the reference reimplementation, not the paper's full text ([docs/protocol.md](docs/protocol.md)).",
        f"> * **Deviations you may want to change:** noise formulation {formulation.does(config)}, where the "
        f"summary read favours scaled noise and the reference defaults to it (`{key(formulation, ',')}`); the GPU "
        f"count sets the global batch and the learning rate is not rescaled with it "
        f"(`{key(precision, ';').split(', ')[-1].strip('`')}`); "
        + (f"DDeP's ImageNet images at {', '.join(crops)} crops, as the reference pretrains, not the target's "
           "geometry (`datasets.<name>.unlabelled_crop`)." if crops else
           "DDeP's ImageNet images at the target's geometry (`datasets.<name>.unlabelled_crop` to change it)."),
    ]
    if others := [g.split(" at ")[0] for g in gpu_rows if g != reference]:
        lines[2] += f" Also measured there: {'; '.join(others)}."
    return "\n".join(lines)
