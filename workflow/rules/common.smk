# The sweep, expanded once from the config into a table of jobs (ddep.sweep names them).
import json
import shlex
from pathlib import Path

import pandas as pd

from ddep.analysis import COMPARISONS, CSV_NAMES, csv_path, figure_paths, table_paths
from ddep.data.table import definition
from ddep.sweep import (PRESET_ARMS, SUPERVISED, NoiseSetting, ablated_cells, arm_images, arm_table, finetune_jobs,
                        parse_run_name, preset_arm, pretrainings, result_stem, sweep_models)
from ddep.sweep_config import (dataset_of, encoder_weights, gpus, rule_resources, schedule_overrides,
                               schedule_source)
from ddep.tuning import UNTUNED, held_out_settings, schedule_flags, tuning_jobs

JOBS = finetune_jobs(config)
ARMS = arm_table(config)  # by name: the presets and the config's own arms, each a record
# (dataset, model, run) -> the denoising pretraining it starts from (shared where records agree)
PRETRAINING_OF = {(j["dataset"], j["model"], j["run"]): j["pretraining"] for j in JOBS}
MODELS = {m.name: m for m in sweep_models(config)}  # by name, the path segment {model}
FINETUNES = pd.DataFrame(JOBS)  # one row per run
FINETUNES["json"] = [f"resources/runs/{r.dataset}/{r.model}/{r.fraction}/{r.run}/seed{r.seed}.json"
                     for r in FINETUNES.itertuples()]
# The fine-tune setting of every held-out cell, from the tuning stage's selection file (empty
# without a `tuning` section: the schedule file's). `snakemake tune` makes that file, so it alone
# may start without it.
try:
    SETTINGS = {} if TUNING_ONLY else held_out_settings(config, JOBS)
except (ValueError, FileNotFoundError) as e:
    raise WorkflowError(str(e)) from None
_TUNING = tuning_jobs(config)  # expanded once: the rules' inputs and each point's options
TUNING_JOBS = pd.DataFrame(_TUNING)
# each grid point's `ddep finetune --tuning-point` values, by its folder name
TUNING_POINTS = {j["point_slug"]: " ".join(f"{k}={v}" for k, v in j["point"].items()) for j in _TUNING}
DEVELOPMENT_SPLIT = "dev"  # the split the tuning stage evaluates on (ddep.data.table)
PRETRAININGS = pretrainings(config)  # (dataset, model, name): each computed once, shared by its fine-tunes
# Their JSONs (what each learnt from, how long, how well), tabulated by `ddep aggregate`.
PRETRAINING_JSONS = [f"resources/weights/{ds}/{m}/{name}.json" for ds, m, name in PRETRAININGS] + [
    f"resources/weights/{ds}/{m}/supervised.json" for ds in config["datasets"] for m in MODELS
    if not encoder_weights(config, ds, MODELS[m])
    and any(ARMS[arm].encoder == SUPERVISED for arm in FINETUNES.arm[FINETUNES.dataset == ds])]
DEFAULT_NOISE = NoiseSetting.from_config(config["denoising"])
RESULTS, FIGURES_DIR = config.get("results_dir", "results"), config.get("figures_dir", "figures")
RESULT_TABLES = [csv_path(RESULTS, name) for name in CSV_NAMES]
CLAIMS_TABLE = table_paths(RESULTS, "claims")[0]  # all datasets in one table, written with the CSVs
PRETRAINING_TABLES = [csv_path(RESULTS, "pretrainings"), *table_paths(RESULTS, "pretrainings")]
# Every dataset has a label-efficiency table and figure; a noise-ablation one where it is ablated.
# A dataset's file stem is `builtin`, or `builtin_<model>` per model when there are several.
_STEMS = {ds: [result_stem(ds, m, len(MODELS) > 1) for m in MODELS] for ds in config["datasets"]}
_KINDS = [(stem, "label_efficiency") for ds in config["datasets"] for stem in _STEMS[ds]] + \
    [(result_stem(ds, m, len(MODELS) > 1), "noise") for ds, m in ablated_cells(JOBS)]
TABLES = [path for stem, kind in _KINDS for path in table_paths(RESULTS, f"{stem}_{kind}")]
FIGURES = [path for stem, kind in _KINDS for path in figure_paths(FIGURES_DIR, f"{stem}_{kind}")]
if len({ds for ds, _ in ablated_cells(JOBS)}) > 1:  # the paper's noise figure: one panel per ablated dataset
    FIGURES += figure_paths(FIGURES_DIR, "noise")
# and a claims figure (from claims.csv; a dataset without claims gets one that says so)
CLAIMS_FIGURES = [path for ds in config["datasets"] for stem in _STEMS[ds]
                  for path in figure_paths(FIGURES_DIR, f"{stem}_claims")]
# The config's own arms (not presets) against the presets: a table and a forest plot, only where it has some
OWN_ARMS = [name for name in dict.fromkeys(FINETUNES.arm) if name not in PRESET_ARMS]
COMPARISON_TABLES = [csv_path(RESULTS, COMPARISONS), *table_paths(RESULTS, COMPARISONS)] if OWN_ARMS else []
COMPARISON_FIGURES = [path for ds in config["datasets"] for stem in _STEMS[ds]
                      for path in figure_paths(FIGURES_DIR, f"{stem}_{COMPARISONS}")] if OWN_ARMS else []


def dataset(wc):
    return config["datasets"][wc.dataset]


def label_fraction(wc):
    """The fraction as the config writes it ("1/30") from its file-name slug ("1_30")."""
    return wc.fraction.replace("_", "/")


def run_arm(wc):
    """The arm of a run or pretraining name (ddep.sweep): ddep_s0.4_scaled -> ddep."""
    return parse_run_name(wc.run, ARMS)[0]


def arm(wc):
    """The record of the run's (or pretraining's) arm: what the rules read, never its name."""
    return ARMS[run_arm(wc)]


def dataset_args(wc, schedule=False):
    """A dataset of the entry's own: its definition for the job (--dataset-def, JSON), and
    (training jobs) whose schedule files it trains by."""
    own = definition(dataset(wc))
    args = f"--dataset-def {shlex.quote(json.dumps(own))}" if own else ""
    if schedule and schedule_source(config, wc.dataset) != wc.dataset:
        args += f" --schedule {schedule_source(config, wc.dataset)}"
    return args


def schedule_inputs(wc, stage):
    """A training job's schedule files (its dataset's for `stage`, and their bases) as inputs: an edit
    to one reruns the jobs that train by it."""
    from ddep.configs.compose import schedule_files  # mmengine's config reader: only when jobs are made
    try:
        return [str(path) for path in schedule_files(schedule_source(config, wc.dataset), stage)]
    except ValueError:  # no such schedule: the job itself stops with the message that says so
        return []


def dataset_ready(wc):
    """The built-in dataset is a workflow output; a paper dataset must already be on disk."""
    d = dataset(wc)
    return f"{d['root']}/meta.json" if d.get("generate") else []


def model(wc):
    return MODELS[wc.model]


def supervised_encoder(wc):
    """The user's checkpoint (file or timm hub name): the model's, else the dataset's; else the
    workflow's supervised stand-in of this model."""
    weights = encoder_weights(config, wc.dataset, model(wc))
    return weights if weights else f"resources/weights/{wc.dataset}/{wc.model}/supervised.safetensors"


def supervised_encoder_input(wc):
    """Only the workflow's own encoder is a DAG input (a hub name is not a file)."""
    return [] if encoder_weights(config, wc.dataset, model(wc)) else supervised_encoder(wc)


def arm_encoder(wc):
    """Where the arm's pretrained encoder starts: the supervised encoder, or its checkpoint."""
    return supervised_encoder(wc) if arm(wc).encoder == SUPERVISED else arm(wc).checkpoint


def arm_encoder_input(wc):
    """The arm's encoder as a DAG input: the workflow's own, or the user's checkpoint file."""
    if arm(wc).encoder == SUPERVISED:
        return supervised_encoder_input(wc)
    return arm(wc).checkpoint if Path(arm(wc).checkpoint).is_file() else []


def pretraining(wc):
    """The denoising checkpoint a fine-tune starts from: shared by the arms whose records agree."""
    name = PRETRAINING_OF[wc.dataset, wc.model, wc.run]
    return f"resources/weights/{wc.dataset}/{wc.model}/{name}.pth"


def development_args(wc):
    """A paper dataset's development slice, kept out of its labelled splits."""
    n = (dataset(wc).get("development") or {}).get("n_images")
    return f"--development {n}" if n else ""


def development_list(wc):
    """The tuning runs' evaluation list where the dataset has a development slice, not scenes."""
    return f"resources/splits/{wc.dataset}/development.txt" if dataset(wc).get("development") else []


def finetune_setting_args(wc):
    """A held-out fine-tune's setting: the one selected for its cell, and where it came from."""
    if not config.get("tuning"):
        return f"--setting-from {UNTUNED}"
    cell = (wc.dataset, wc.model, label_fraction(wc), run_arm(wc))
    return f"{schedule_flags(SETTINGS[cell])} --setting-from {config['tuning']['selection']}"


def ddep(rule_name):
    """The command: `ddep`, or torchrun over `ddep.cli` when the rule asks for several GPUs.
    `exec` replaces the rule's shell, so the SIGTERM that SLURM sends before the time limit or
    on preemption reaches the job (which checkpoints and exits) with no shell dying first."""
    n = gpus(config, rule_name)
    return f"exec torchrun --standalone --nproc_per_node {n} -m ddep.cli" if n > 1 else "exec ddep"


def crop_args(wc):
    """A dataset's `crop_size` override (training crop and sliding window), if it sets one."""
    crop = dataset(wc).get("crop_size")
    return f"--crop-size {crop[0]} {crop[1]}" if crop else ""


def job_args(rule_name, stage, dataset=None, arm=None):
    """Options every training job takes: precision, fast path, launcher, schedule overrides
    (a pretraining's: its arm's too; the model's: model_args)."""
    flags = [f" --{key.replace('_', '-')}" for key in ("channels_last", "compile") if config.get(key)]
    launcher = " --launcher pytorch" if gpus(config, rule_name) > 1 else ""
    schedule = schedule_flags(schedule_overrides(config, stage, dataset, arm))
    return f"--amp {config.get('amp', 'none')}{''.join(flags)}{launcher} {schedule}"


def model_args(wc):
    """The job's model (--model, --model-name) from the {model} path segment."""
    return model(wc).cli_args()


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
