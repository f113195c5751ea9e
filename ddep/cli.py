"""``ddep``: one subcommand per workflow step, each a thin layer over the library."""
from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from mmengine.config import DictAction

from ddep.analysis import COMPARE_CSV_NAMES, WELCH_ALPHA, csv_path
from ddep.sweep import (ARM_ORDER, DEFAULT_SIGMA, FORMULATIONS, LOSSES, TARGETS, ArmError, NoiseSetting,
                        parse_arm, sweep_arms, sweep_models)
from ddep.sweep_config import SCHEMA, load_config
from ddep.tuning import TUNABLE, file_sha256

EXIT_USAGE, EXIT_FAILED = 2, 1
EXIT_PREEMPTED = 75  # sysexits' EX_TEMPFAIL: stopped on a signal, checkpoint saved, rerun to resume
DEFAULT_RUNS_GLOB = "resources/runs/**/*.json"


def _job_args(p: argparse.ArgumentParser, stage: str) -> None:
    g = p.add_argument_group("job")
    g.add_argument("--work-dir", type=Path, required=True,
                   help="checkpoints and logs; a restarted job resumes from here")
    g.add_argument("--model", "--preset", dest="model", default="transunet_tiny",
                   help="the model: a ddep model (transunet_tiny, transunet_r50_vit_b16; the "
                        "presets tiny, r50_vit_b16), an mmseg config (mmseg::segformer/...py) or "
                        "a .py config file")
    g.add_argument("--model-name", default="",
                   help="the model's name in the run identity (default: its config's file stem)")
    if stage == "finetune":
        g.add_argument("--seed", type=int, nargs="+", default=[0],
                       help="several: trained one after another in this process (start-up paid once); "
                            "--split, --out and --work-dir then name each seed's with {seed}")
    else:
        g.add_argument("--seed", type=int, default=0)
    g.add_argument("--schedule", default=None, metavar="DATASET",
                   help=f"use this dataset's {stage} schedule file, ddep/configs/_base_/schedules/"
                        f"DATASET_{stage}.py or {stage}.py (default: --dataset's)")
    g.add_argument("--iters", type=int, help="override the schedule's max_iters")
    g.add_argument("--batch-size", type=int, help="override the schedule's batch size")
    g.add_argument("--lr", type=float, help="override the schedule's learning rate")
    g.add_argument("--checkpoint-interval", type=int, help="iterations between checkpoints")
    g.add_argument("--num-workers", type=int, help="dataloader workers")
    g.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the resume checkpoints in --work-dir after the job succeeds")
    if stage in ("denoise", "finetune"):
        g.add_argument("--crop-size", type=int, nargs=2, metavar=("H", "W"),
                       help="training crop and sliding-window size (default: the dataset's)")
    if stage == "finetune":
        g.add_argument("--encoder-lr-mult", type=float, help="LR factor for a pretrained encoder")
    h = p.add_argument_group("hardware")
    h.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="mixed precision autocast (GPU; bf16 also on CPUs)")
    h.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none",
                   help="distributed launcher: 'pytorch' under torchrun for multi-GPU DDP")
    h.add_argument("--pin-memory", action="store_true")
    h.add_argument("--channels-last", action="store_true",
                   help="convolutions in NHWC memory format (faster on GPUs and on CPUs)")
    h.add_argument("--compile", action="store_true",
                   help="torch.compile the encoder and decoder (GPU; slow first iterations)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                   help="override any key of the composed mmengine config, e.g. "
                        "optim_wrapper.optimizer.weight_decay=0.05")


def _options_and_schedule(args: argparse.Namespace, stage: str, dataset: str):
    from ddep.configs import schedule_config
    from ddep.sweep import Model
    from ddep.train.jobs import JobOptions
    opts = JobOptions(work_dir=args.work_dir, model=Model(args.model, args.model_name), seed=args.seed, amp=args.amp,
                      launcher=args.launcher, pin_memory=args.pin_memory,
                      channels_last=args.channels_last, compile=args.compile,
                      keep_checkpoints=args.keep_checkpoints,
                      cfg_options=dict(args.cfg_options or {}))
    sched = schedule_config(
        args.schedule or dataset, stage, iters=args.iters, batch_size=args.batch_size, lr=args.lr,
        checkpoint_interval=args.checkpoint_interval, num_workers=args.num_workers,
        encoder_lr_mult=getattr(args, "encoder_lr_mult", None))
    return opts, sched  # the Runner initialises torch.distributed for --launcher pytorch|slurm


# --- data ----------------------------------------------------------------------------------

def cmd_generate_builtin(args: argparse.Namespace) -> None:
    from ddep.data import generate_builtin
    generate_builtin(args.root, seed=args.seed, n_train=args.n_train, n_val=args.n_val,
                     n_unlabelled=args.n_unlabelled, n_source_train=args.n_source_train,
                     n_source_val=args.n_source_val, height=args.height, width=args.width,
                     source_size=args.source_size, n_dev=args.n_dev, dev_seed=args.dev_seed)
    print(f"built-in dataset ready in {args.root}")


def cmd_preview(args: argparse.Namespace) -> None:
    from ddep.data import write_preview_grid, write_source_preview
    write_preview_grid(args.root, args.out, n=args.n)
    print(f"wrote {args.out}")
    if args.source_out:
        write_source_preview(args.root, args.source_out)
        print(f"wrote {args.source_out}")


def _dataset(args: argparse.Namespace):
    """The job's dataset (:class:`ddep.data.DatasetDef`): ddep's of --dataset's name, or the
    one --dataset-def (a sweep entry's definition, JSON) defines."""
    import json

    from ddep.data.table import dataset_def
    return dataset_def(args.dataset, json.loads(args.dataset_def) if args.dataset_def else None)


def cmd_split(args: argparse.Namespace) -> None:
    from ddep.data import check_dataset, list_train_stems, select_split, write_split
    from ddep.data.splits import development_stems
    dataset = _dataset(args)
    check_dataset(dataset, args.data_root, name=args.dataset)
    train = list_train_stems(dataset, args.data_root)
    development = development_stems(train, args.dataset, args.development) if args.development else []
    if args.fraction == "development":
        stems = development
    else:  # the development slice is never labelled
        stems = select_split(sorted(set(train) - set(development)), args.dataset, args.fraction, args.seed)
    write_split(args.out, stems)
    print(f"{args.dataset} {args.fraction} seed {args.seed}: {len(stems)} images -> {args.out}")


def cmd_check(args: argparse.Namespace) -> None:
    from ddep.preflight import preflight
    config = load_config(args.configfile, args.schema)
    preflight(config, models=True)
    print(f"ok: {', '.join(args.configfile)}: {len(config['datasets'])} dataset(s), arms "
          f"{[a.name for a in sweep_arms(config)]}, models {[m.name for m in sweep_models(config)]}: data, "
          f"weights, fractions, crops and noise settings checked; every model trained one step per "
          f"stage and crop")


def cmd_estimate(args: argparse.Namespace) -> None:
    from ddep.estimate import report
    from ddep.preflight import preflight
    config = load_config(args.configfile, args.schema)
    preflight(config, data=False)  # the config's own consistency; no data needed to price it
    print(report(config, args.gpu))


def cmd_protocol(args: argparse.Namespace) -> None:
    from ddep.io import atomic_write_text
    from ddep.protocol import render
    text = render(load_config([args.configfile]), args.configfile)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")


# --- training ------------------------------------------------------------------------------

def cmd_pretrain_supervised(args: argparse.Namespace) -> None:
    from ddep.train.jobs import pretrain_supervised
    opts, sched = _options_and_schedule(args, "supervised", "builtin")
    r = pretrain_supervised(args.data_root, args.out, opts, sched)
    print(f"supervised encoder -> {args.out}: held-out top-1 {r['accuracy']:.3f} on "
          f"{r['source_classes']} classes (chance {r['chance']:.3f}), {r['iterations']} iterations")


def cmd_pretrain_denoise(args: argparse.Namespace) -> None:
    from ddep.configs import denoise_config
    from ddep.data import check_dataset
    from ddep.noise import NoiseConfig
    from ddep.train.jobs import pretrain_denoise
    sigma = args.sigma or [DEFAULT_SIGMA]
    noise = NoiseConfig(sigma=sigma[0] if len(sigma) == 1 else tuple(sigma),
                        formulation=args.formulation, target=args.target, loss=args.loss)
    spec = _dataset(args)
    unlabelled = args.unlabelled
    if unlabelled is None:  # the target dataset's own train images, labels unused
        if args.data_root is None:
            raise ValueError("pass --data-root (its train images are used) or --unlabelled DIR")
        check_dataset(spec, args.data_root, splits=("train",), name=args.dataset)
        unlabelled = Path(args.data_root) / spec.splits["train"].img_path
    opts, sched = _options_and_schedule(args, "denoise", args.dataset)
    cfg = denoise_config(args.dataset, opts.model, unlabelled, crop_size=args.crop_size,
                         image_crop=args.image_crop, definition=spec.definition)
    m = pretrain_denoise(cfg, args.arm, noise, args.out, opts, sched,
                         encoder_weights=args.encoder_weights,
                         noise_conditioning=args.noise_conditioning, freeze_encoder=args.freeze_encoder,
                         heldout=args.heldout)
    heldout = f", held-out loss {m['heldout_loss']:.4f} (zero: {m['heldout_zero_loss']:.4f})" if args.heldout else ""
    print(f"{args.arm} sigma={noise.label} -> {args.out}: final loss {m['final_loss']:.4f}{heldout}, "
          f"{m['iterations']} iterations in {m['wall_time_s']:.0f} s")


SEED_FIELD = "{seed}"  # in --split, --out and --work-dir of a fine-tune of several seeds


def cmd_finetune(args: argparse.Namespace) -> None:
    """Each of ``args.seed`` in turn, in this process. A seed's resume checkpoints stay until every
    seed is done: a rerun of a killed job (whose outputs the workflow deletes) then evaluates a
    finished seed from its last checkpoint instead of training it again."""
    from ddep.train.jobs import drop_checkpoints
    several = len(args.seed) > 1
    per_seed = ("split", "out", "work_dir")
    unnamed = [f"--{k.replace('_', '-')}" for k in per_seed if several and SEED_FIELD not in str(getattr(args, k))]
    if unnamed:
        raise ValueError(f"{', '.join(unnamed)}: with several --seed values, name each seed's file with "
                         f"{SEED_FIELD}, e.g. --out runs/seed{SEED_FIELD}.json")
    runs = []
    for seed in args.seed:
        run = argparse.Namespace(**vars(args))
        run.seed = seed
        for k in per_seed:
            setattr(run, k, Path(str(getattr(args, k)).replace(SEED_FIELD, str(seed))))
        run.keep_checkpoints = args.keep_checkpoints or several
        _finetune_one(run)
        runs.append(run)
    if several and not args.keep_checkpoints:
        for run in runs:
            drop_checkpoints(run.work_dir, run.out)


def _finetune_one(args: argparse.Namespace) -> None:
    from ddep.configs import finetune_config
    from ddep.data import check_dataset
    from ddep.train.jobs import finetune
    point = dict(args.tuning_point or {})
    if set(point) - set(TUNABLE):
        raise ValueError(f"--tuning-point: {sorted(set(point) - set(TUNABLE))} cannot be tuned "
                         f"(tunable: {', '.join(TUNABLE)})")
    vars(args).update(point)  # a tuning run trains at its grid point
    spec = _dataset(args)
    opts, sched = _options_and_schedule(args, "finetune", args.dataset)
    cfg = finetune_config(args.dataset, opts.model, args.data_root, crop_size=args.crop_size,
                          definition=spec.definition, eval_split=args.eval_split, eval_list=args.eval_list)
    check_dataset(spec, args.data_root, name=args.dataset,
                  splits=("train", "val" if args.eval_list else args.eval_split))
    label = args.label_fraction or args.split.stem
    source = dict(setting_from=args.setting_from)
    if args.setting_from and Path(args.setting_from).is_file():
        source["setting_sha256"] = file_sha256(args.setting_from)
    record = dict(tuning=dict(point=point, eval_split=args.eval_split, status="ok")) if point else None
    try:
        r = finetune(cfg, args.arm, args.split, label, args.out, opts, sched, init_from=args.init_from,
                     encoder_weights=args.encoder_weights, setting_from=source, record=record)
    except Exception as e:  # noqa: BLE001
        if not point or not _crashed_in_training(e):
            raise
        # the tuning rule counts a crashed point as failed (ddep.tuning.RULE): record it, go on
        from ddep.io import write_json
        write_json(args.out, dict(dataset=args.dataset, model=opts.model.name, label_fraction=label,
                                  arm=args.arm, seed=args.seed, tuning=dict(
                                      point=point, eval_split=args.eval_split, status="failed",
                                      reason=f"{type(e).__name__}: {_message(e)}")))
        print(f"{args.arm} {label} seed {args.seed} at {point}: failed ({_message(e)}) -> {args.out}")
        return
    print(f"{args.arm} {r['label_fraction']} ({r['n_labelled']} images) seed {args.seed}: "
          f"mIoU {r['mIoU']:.2f} on {args.eval_split} -> {args.out}")


# --- results -------------------------------------------------------------------------------

def cmd_aggregate(args: argparse.Namespace) -> None:
    from ddep.analysis.results import write_results
    paths = list(args.runs) if args.runs else sorted(glob.glob(args.runs_glob, recursive=True))
    if not paths:  # almost always a wrong glob or working directory
        raise ValueError(f"no run files match {args.runs_glob!r}")
    write_results(paths, args.out, default_noise=args.default_noise,
                  pretraining_paths=args.pretrainings or ())


def cmd_tuning(args: argparse.Namespace) -> None:
    import json

    from ddep.analysis.tuning import tuning_figure, write_tuning
    from ddep.data.table import split_sha256
    # a dataset's development scenes (its root), or its development slice (the list of its images)
    hashes = {ds: file_sha256(path) if Path(path).is_file() else split_sha256(ds, path, args.eval_split)
              for ds, path in dict(args.data_root or {}).items()}
    doc = write_tuning(args.runs, json.loads(args.grid), args.seeds, args.results, args.selection, hashes)
    tuning_figure(args.results, args.figures)
    print(f"tuning: {doc['provenance']['runs']} runs ({doc['provenance']['failed']} failed) -> "
          f"{args.selection}, {args.results}/tuning.csv, {args.figures}/tuning.png")


def cmd_figures(args: argparse.Namespace) -> None:
    from ddep.analysis.figures import write_figures  # matplotlib only when figures are wanted
    write_figures(args.results, args.out, default=args.default_noise)


def cmd_compare(args: argparse.Namespace) -> int:
    from ddep.analysis.compare import compare_results
    _, claims, text = compare_results(args.run_a, args.run_b, args.out, args.alpha)
    print(text, end="")
    if args.out:
        print("wrote " + " and ".join(csv_path(args.out, name) for name in COMPARE_CSV_NAMES))
    return EXIT_FAILED if args.fail_on_robust_flip and claims["robust_flip"].any() else 0


def cmd_readme(args: argparse.Namespace) -> None:
    from ddep.readme import documents, fill_readme
    for path in args.readme or documents(args.root):
        used = fill_readme(path, args.root)
        if used or args.readme:
            print(f"{path}: {len(used)} generated block(s) from {', '.join(used) or 'nothing'}")


def _arm_name(name: str) -> str:
    """A preset's name, or the name of an arm of the user's (its record is the sweep's)."""
    try:
        return parse_arm(name).name if name in ARM_ORDER else parse_arm({"name": name}).name
    except ArmError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None


def _noise_setting(name: str) -> NoiseSetting:  # argparse shows an ArgumentTypeError's message
    try:
        return NoiseSetting.from_slug(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _dataset_def_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset-def", metavar="JSON",
                   help="a dataset of a sweep entry's own: its defining keys as JSON (config or "
                        "type, train/val paths, suffixes, classes, palette, ignore_index; "
                        "docs/datasets.md); default: ddep's dataset of --dataset's name")


def build_parser() -> argparse.ArgumentParser:
    import inspect

    from ddep.data.builtin import generate_builtin
    parser = argparse.ArgumentParser(
        prog="ddep", description="Decoder denoising pretraining benchmark: one subcommand per "
                                 "workflow step (the Snakefile calls these).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate-builtin", help="generate the built-in dataset: street scenes "
                                                "(target) and an object-centric source set")
    p.add_argument("--root", type=Path, required=True)
    defaults = inspect.signature(generate_builtin).parameters  # one place for the defaults
    for name in ("seed", "n_train", "n_val", "n_unlabelled", "n_source_train", "n_source_val",
                 "height", "width", "source_size", "n_dev", "dev_seed"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=defaults[name].default)
    p.set_defaults(func=cmd_generate_builtin)

    p = sub.add_parser("preview", help="PNG grid of built-in images and their label maps, and "
                                       "of the source set's classes")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="street scenes and label maps")
    p.add_argument("--source-out", type=Path, help="the source set, two images per class")
    p.add_argument("--n", type=int, default=8)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("split", help="label-fraction split file (mmseg ann_file)")
    p.add_argument("--dataset", required=True)
    _dataset_def_arg(p)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--fraction", required=True,
                   help="1/30, 0.05 or an image count such as 100; `development`: the development slice")
    p.add_argument("--development", type=int, default=0, metavar="N",
                   help="keep a development slice of N train images out of every labelled split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("check", help="preflight a sweep config: datasets, weights, fractions, "
                                     "unlabelled folders, presets and crops, noise settings")
    p.add_argument("--configfile", nargs="+", required=True,
                   help="sweep config(s), merged in order as Snakemake merges them")
    p.add_argument("--schema", type=Path, default=SCHEMA, help="config schema")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("estimate", help="GPU-hours of a sweep config, from the config alone "
                                        "(no data or weights needed); as `snakemake estimate`")
    p.add_argument("--configfile", nargs="+", required=True,
                   help="sweep config(s), merged in order as Snakemake merges them")
    p.add_argument("--gpu", help="GPU kind of benchmarks/throughput.csv (default: the config's "
                                 "gpu_model, H100)")
    p.add_argument("--schema", type=Path, default=SCHEMA, help="config schema")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("protocol", help="docs/protocol.md: what the paper states, what ddep does "
                                        "(from the config and schedule files), why, and the key")
    p.add_argument("--configfile", default="config/paper.yaml", help="the sweep it describes")
    p.add_argument("--out", type=Path, help="write the page here (default: print it)")
    p.set_defaults(func=cmd_protocol)

    p = sub.add_parser("pretrain-supervised",
                       help="supervised encoder on the built-in source set (21K stand-in)")
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="timm-format .safetensors")
    _job_args(p, "supervised")
    p.set_defaults(func=cmd_pretrain_supervised)

    p = sub.add_parser("pretrain-denoise", help="denoising pretraining: DeP or DDeP")
    p.add_argument("--arm", type=_arm_name, required=True,
                   help="dep, ddep, or the name of an arm of yours (its run identity)")
    p.add_argument("--dataset", required=True, help="sets crop size and schedule")
    _dataset_def_arg(p)
    p.add_argument("--data-root", type=Path, help="dataset root (its train images are the default "
                                                  "unlabelled source)")
    p.add_argument("--unlabelled", type=Path, help="any folder of images instead (e.g. ImageNet train)")
    p.add_argument("--heldout", type=Path,
                   help="images it does not train on: its held-out loss is measured there (the JSON's "
                        "heldout_loss, beside the zero prediction's)")
    p.add_argument("--image-crop", type=int, nargs=2, metavar=("H", "W"),
                   help="crop of the unlabelled images when they are not shaped like the "
                        "dataset's (e.g. 64 64 for the built-in source set, 224 224 for "
                        "ImageNet); the model keeps the dataset's crop (default: --crop-size)")
    p.add_argument("--sigma", type=float, nargs="+",
                   help=f"fixed noise level, or two values a b for U[a, b] (default: {DEFAULT_SIGMA})")
    p.add_argument("--formulation", choices=FORMULATIONS, default=FORMULATIONS[0])
    p.add_argument("--target", choices=TARGETS, default=TARGETS[0])
    p.add_argument("--loss", choices=LOSSES, default=LOSSES[0])
    p.add_argument("--noise-conditioning", action="store_true", help="condition the decoder on sigma")
    p.add_argument("--encoder-weights", help="ddep: timm-format supervised encoder to freeze; "
                                             "any arm: the encoder checkpoint it starts from")
    p.add_argument("--freeze-encoder", action=argparse.BooleanOptionalAction, default=None,
                   help="freeze the encoder while the decoder is denoised (default: as the preset "
                        "--arm names, ddep frozen; any other arm not)")
    p.add_argument("--out", type=Path, required=True, help="weights-only checkpoint (.pth)")
    _job_args(p, "denoise")
    p.set_defaults(func=cmd_pretrain_denoise)

    p = sub.add_parser("finetune", help="fine-tune the whole network, evaluate, write the run JSON")
    p.add_argument("--arm", type=_arm_name, required=True,
                   help=f"{', '.join(ARM_ORDER)}, or the name of an arm of yours (its run identity)")
    p.add_argument("--dataset", required=True)
    _dataset_def_arg(p)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--split", type=Path, required=True, help="label-fraction split file")
    p.add_argument("--label-fraction", help="label for tables, e.g. 1/30 (default: split file name)")
    p.add_argument("--init-from", help="dep/ddep (any denoised arm): denoising checkpoint")
    p.add_argument("--encoder-weights", help="21k (any arm with a pretrained encoder, decoder "
                                             "random): its encoder checkpoint")
    p.add_argument("--out", type=Path, required=True, help="per-run JSON")
    p.add_argument("--eval-split", default="val",
                   help="the split evaluated on: val (reported results) or the development split "
                        "(the tuning stage's: dev)")
    p.add_argument("--eval-list", type=Path,
                   help="with --eval-split dev on a dataset without development scenes: its development "
                        "slice of the train images (`ddep split --fraction development`)")
    p.add_argument("--setting-from", default="",
                   help="where the fine-tune setting came from (the tuning selection file), recorded")
    p.add_argument("--tuning-point", nargs="+", action=DictAction, metavar="KEY=VALUE",
                   help="a tuning run at this grid point (e.g. lr=0.003 encoder_lr_mult=0.1): its "
                        "values override the schedule, and a failure is recorded, not raised")
    _job_args(p, "finetune")
    p.set_defaults(func=cmd_finetune)

    agg = sub.add_parser("aggregate", help="per-run JSONs -> runs/summary/paired/claims CSVs, "
                                           "tables")
    agg.add_argument("--runs-glob", default=DEFAULT_RUNS_GLOB,
                     help="glob of per-run JSONs (** is any depth)")
    agg.add_argument("--runs", nargs="+", metavar="JSON",
                     help="explicit per-run JSONs (instead of --runs-glob)")
    agg.add_argument("--out", default="results", help="folder of the CSVs and tables/")
    agg.add_argument("--pretrainings", nargs="+", metavar="JSON",
                     help="the pretraining jobs' JSONs: pretrainings.csv and tables/pretrainings.md")
    fig = sub.add_parser("figures", help="summary.csv, claims.csv -> PNG/PDF figures")
    fig.add_argument("--results", default="results", help="folder of summary.csv and claims.csv")
    fig.add_argument("--out", default="figures", help="output folder")
    for p, func in ((agg, cmd_aggregate), (fig, cmd_figures)):
        p.add_argument("--default-noise", type=_noise_setting, metavar="SETTING",
                       help="DeP/DDeP's setting in the label-efficiency table and the claims, the "
                            "ablations' baseline, as in the weights' names: s0.2, "
                            "sU0.1-0.4_scaled_x_cond (default: the setting with the most results)")
        p.set_defaults(func=func)

    p = sub.add_parser("tuning", help="the tuning runs' JSONs -> tuning.csv, its table and figure, "
                                      "and the selection file the held-out fine-tunes read")
    p.add_argument("--runs", nargs="+", required=True, metavar="JSON", help="the tuning runs")
    p.add_argument("--grid", required=True, help='the config\'s tuning.grid as JSON: {"lr": [0.001, 0.003]}')
    p.add_argument("--seeds", nargs="+", type=int, required=True, help="the development seeds")
    p.add_argument("--data-root", nargs="+", action=DictAction, metavar="DATASET=PATH",
                   help="each dataset's root (development scenes) or development list: its hash is recorded")
    p.add_argument("--eval-split", default="dev", help="the development split's name")
    p.add_argument("--selection", required=True, help="the selection file to write")
    p.add_argument("--results", default="results", help="folder of tuning.csv and tables/")
    p.add_argument("--figures", default="figures", help="folder of the tuning figure")
    p.set_defaults(func=cmd_tuning)
    p = sub.add_parser("compare", help="two results folders side by side (e.g. a rerun against the committed "
                                       "run): per cell both means, B - A, CI overlap, Welch's p; per claim "
                                       "both verdicts and flips")
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="a results folder (summary.csv, claims.csv), e.g. results")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the folder compared with it, e.g. rerun/results")
    p.add_argument("--out", type=Path, default=Path("comparison"),
                   help="folder for compare_cells.csv and compare_claims.csv (default: comparison)")
    p.add_argument("--alpha", type=float, default=WELCH_ALPHA,
                   help=f"family-wise level of Welch's test over the shared cells (Bonferroni; default {WELCH_ALPHA})")
    p.add_argument("--fail-on-robust-flip", action="store_true",
                   help="exit 1 when a claim's verdict differs and it is fragile in neither run")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("readme", help="generated blocks of README.md and docs/*.md <- "
                                      "results/tables/*.md")
    p.add_argument("--readme", nargs="+", type=Path, metavar="FILE",
                   help="default: README.md and docs/*.md")
    p.add_argument("--root", default=".", help="folder the blocks' paths are relative to")
    p.set_defaults(func=cmd_readme)
    return parser


def _message(e: BaseException) -> str:
    """The error's own message. Raised in a DataLoader worker, it carries the worker's
    traceback, whose last line is the original message."""
    text = str(e).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1].split(f"{type(e).__name__}: ", 1)[-1]
    return text


def _failure(e: Exception) -> tuple[str, int] | None:
    """(one line for the user, exit code) for a failure of the job's input or environment;
    None for a bug (the traceback is then the useful report)."""
    import errno

    from ddep.checkpoints import CheckpointError
    from ddep.train.components import NonFiniteLossError
    from ddep.train.resume import Preempted
    if isinstance(e, NonFiniteLossError):
        return f"stopped: {e}", EXIT_FAILED
    if isinstance(e, Preempted):
        return f"stopped: {e}", EXIT_PREEMPTED
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
        return (f"error: cannot write {e.filename or 'the output'}: {e.strerror}; free space or "
                f"fix the folder, then rerun the same command (training resumes from its last "
                f"checkpoint)", EXIT_FAILED)
    if isinstance(e, (ValueError, FileNotFoundError, CheckpointError)):
        return f"error: {_message(e)}", EXIT_USAGE
    return None


def _crashed_in_training(e: Exception) -> bool:
    """A failure of the training itself (a NaN loss, an error inside the model), which the tuning
    rule records as a failed point; not a preemption (the job resumes) nor bad input or a full
    disk (the user fixes those)."""
    from ddep.checkpoints import CheckpointError
    from ddep.train.resume import Preempted
    return not isinstance(e, (Preempted, ValueError, OSError, CheckpointError))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)
    except Exception as e:  # noqa: BLE001
        failure = _failure(e)
        if failure is None or os.environ.get("DDEP_DEBUG"):
            raise
        print(f"ddep {args.command}: {failure[0]}", file=sys.stderr)
        return failure[1]
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
