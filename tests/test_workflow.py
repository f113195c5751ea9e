"""The Snakemake DAG: job counts of the paper grid, schema errors, the smoke grid end to end."""
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fake_data import fake_paper_inputs

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir, *args, check=True, timeout=1800):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *map(str, args)],
                          cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def workspace(tmp_path):
    """A copy of the workflow and configs, so runs never touch the repository's results/."""
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: rule -> count."""
    table = output[output.index("Job stats:"):]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


def model_names(cfg: dict) -> list[str]:
    """The config's models (default: its TransUNet preset), by name."""
    presets = {"tiny": "transunet_tiny", "r50_vit_b16": "transunet_r50_vit_b16"}
    return [m["name"] if isinstance(m, dict) else presets.get(m, m)
            for m in cfg.get("models") or [cfg["preset"]]]


def expected_counts(cfg: dict) -> dict[str, int]:
    """The job counts implied by the sweep definition, computed independently of the workflow."""
    noise = cfg["denoising"]
    every_model = model_names(cfg)
    default = tuple(str(noise.get(k, d)) for k, d in (
        ("sigma", None), ("formulation", "unscaled"), ("target", "eps"), ("noise_conditioning", False)))
    finetunes, denoise, splits = set(), set(), set()

    def add(ds, f, arm, setting, seeds, models=every_model):
        setting = setting if arm in ("dep", "ddep") else "-"
        finetunes.update((ds, m, f, arm, setting, s) for s in seeds for m in models)
        splits.update((ds, f, s) for s in seeds)
        if setting != "-":
            denoise.update((ds, m, arm, setting) for m in models)

    for ds, d in cfg["datasets"].items():
        for f in d["fractions"]:
            for arm in cfg["arms"]:
                add(ds, f, arm, default, d.get("fraction_seeds", {}).get(f, cfg["seeds"]))
        for block in cfg.get("ablations", []):
            if ds not in block.get("datasets", [ds]):
                continue
            axes = [[str(v) for v in block[k]] if k in block else [default[i]]
                    for i, k in enumerate(("sigma", "formulation", "target", "noise_conditioning"))]
            for f in block["fractions"]:
                for arm in block.get("arms", ["dep", "ddep"]):
                    for setting in itertools.product(*axes):
                        add(ds, f, arm, setting, block.get("seeds", cfg["seeds"]),
                            block.get("models", every_model))
    counts = dict(finetune=len(finetunes), pretrain_denoise=len(denoise), split=len(splits),
                  aggregate=1, figures=1, all=1)
    if cfg.get("seeds_in_one_job"):  # a job per cell: its runs but the seed
        counts["finetune_seeds"] = len({run[:-1] for run in finetunes})
        del counts["finetune"]
    trained_encoders = [ds for ds, d in cfg["datasets"].items() if not d.get("encoder_weights")]
    if trained_encoders:
        counts["pretrain_supervised"] = len(trained_encoders) * len(every_model)
    return counts


def test_paper_grid_dry_run_lists_every_job_once_with_shared_pretraining(tmp_path):
    ws = workspace(tmp_path)
    # the paper grid as it is; its inputs (datasets, ImageNet, in21k weights) faked, since the
    # preflight checks them even in a dry run
    cfg = fake_paper_inputs(yaml.safe_load((ws / "config/paper.yaml").read_text()), tmp_path)
    (ws / "config/paper.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(ws, "-n", "--configfile", "config/paper.yaml")
    counts = job_counts(proc.stdout)
    assert counts == expected_counts(cfg)
    # sanity: 3 datasets; Cityscapes 5 fractions, the others 4; x 4 arms x 3 seeds
    assert counts["finetune"] >= (5 + 4 + 4) * 4 * 3
    # every dataset: DeP and DDeP at the default; Pascal Context and ADE20K, the paper's noise
    # study on DeP: 6 more fixed sigmas and U(0.2, 0.3), 7 scaled sigmas, target x and the
    # conditioned interval; never per fraction or seed
    assert counts["pretrain_denoise"] == 3 * 2 + 2 * (7 + 7 + 1 + 1)
    # the study's fine-tunes: its 16 settings beyond the default x 3 seeds, at 1/16 only
    assert counts["finetune"] == (5 + 4 + 4) * 4 * 3 + 2 * 16 * 3


def test_default_config_job_counts(tmp_path):
    ws = workspace(tmp_path)
    cfg = yaml.safe_load((ws / "config/config.yaml").read_text())
    counts = job_counts(snakemake(ws, "-n").stdout)
    assert counts == {**expected_counts(cfg), "generate_builtin": 1}


def test_command_line_config_overrides_the_default_and_a_configfile(tmp_path):
    """`--config key=value` works on top of config/config.yaml and on top of --configfile
    (which replaces the default config rather than merging with it)."""
    ws = workspace(tmp_path)
    default = yaml.safe_load((ws / "config/config.yaml").read_text())
    proc = snakemake(ws, "-n", "-p", "--config", "threads=2")  # (snakemake() passes --cores 2)
    assert job_counts(proc.stdout) == {**expected_counts(default), "generate_builtin": 1}
    # Snakemake exports a job's threads as OMP_NUM_THREADS (torch's intra-op threads)
    finetunes = re.split(r"rule finetune(?:_seeds)?:", proc.stdout)[1:]
    assert finetunes and all("    threads: 2\n" in job for job in finetunes)
    smoke = yaml.safe_load((ws / "config/smoke.yaml").read_text())
    assert "--channels-last" in proc.stdout  # config/config.yaml turns it on
    proc = snakemake(ws, "-n", "-p", "--config", "channels_last=False")
    assert "--channels-last" not in proc.stdout
    proc = snakemake(ws, "-n", "-p", "--configfile", "config/smoke.yaml", "--config",
                     "channels_last=True")  # Snakemake parses True, not true
    assert job_counts(proc.stdout) == {**expected_counts(smoke), "generate_builtin": 1}
    assert "--model-name segformer_b0" in proc.stdout  # the smoke grid's second model
    # a config without `models` runs its preset, whose every cell needs a selected fine-tune setting
    selection = (ws / "config/selection/builtin.yaml").read_text()
    (ws / "config/selection/r50.yaml").write_text(selection.replace("transunet_tiny:", "transunet_r50_vit_b16:"))
    proc = snakemake(ws, "-n", "-p", "--config", "preset=r50_vit_b16", check=False)
    assert proc.returncode != 0 and "has no setting for builtin/transunet_r50_vit_b16/" in proc.stdout + proc.stderr
    proc = snakemake(ws, "-n", "-p", "--config", "preset=r50_vit_b16", "tuning={selection: config/selection/r50.yaml}")
    assert "--model transunet_r50_vit_b16" in proc.stdout and "transunet_tiny" not in proc.stdout
    jobs = [job for rule in ("finetune", "pretrain_denoise", "pretrain_supervised")
            for job in proc.stdout.split(f"rule {rule}:")[1:]]
    assert jobs and all("--channels-last" in job and "--compile" not in job for job in jobs)


def test_a_denoisers_own_schedule_reaches_its_job_and_its_price(tmp_path):
    """`datasets.<name>.denoise_schedule.<arm>` lengthens that arm's pretraining only (the built-in
    DDeP to its plateau), in the job's command and in the estimate alike."""
    from ddep.estimate import estimate
    from ddep.sweep_config import load_config, stage_schedule
    ws = workspace(tmp_path)
    cfg = load_config([str(ws / "config/config.yaml")])
    own = cfg["datasets"]["builtin"]["denoise_schedule"]["ddep"]["iters"]
    shared = stage_schedule(cfg, "builtin", "denoise")["train_cfg"]["max_iters"]
    assert own != shared and stage_schedule(cfg, "builtin", "denoise", "ddep")["train_cfg"]["max_iters"] == own
    proc = snakemake(ws, "-n", "-p")
    jobs = {arm: job for job in (j.split("\n[")[0] for j in proc.stdout.split("rule pretrain_denoise:")[1:])
            for arm in ("dep", "ddep") if f"--arm {arm} " in job}  # each job's block, up to the next one's time
    assert f"--iters {own}" in jobs["ddep"] and "--iters" not in jobs["dep"]
    priced = {j["arm"]: j["images"] for j in estimate(
        [dict(rule="pretrain_denoise", dataset="builtin", arm=a) for a in ("dep", "ddep")], cfg, "H100")}
    batch = stage_schedule(cfg, "builtin", "denoise")["train_dataloader"]["batch_size"]
    assert priced == {"dep": shared * batch, "ddep": own * batch}


def test_every_training_job_takes_its_schedule_files_as_inputs(tmp_path):
    """A schedule file (and the file it builds on) is an input of every job that trains by it, so
    that editing a learning rate there reruns those jobs and no others."""
    proc = snakemake(workspace(tmp_path), "-n", "--forceall")
    schedules = REPO / "ddep/configs/_base_/schedules"
    files = {"pretrain_supervised": {"builtin_supervised.py"},
             "pretrain_denoise": {"builtin_denoise.py", "builtin_supervised.py"},  # the first builds on the second
             "finetune_seeds": {"builtin_finetune.py"}}  # a cell's seeds in one job (config/config.yaml)
    blocks = re.findall(r"\nrule (\w+):\n    input: ([^\n]*)", proc.stdout)
    assert {rule for rule, _ in blocks} >= set(files)
    for rule, inputs in blocks:
        used = {Path(p).name for p in inputs.split(", ") if Path(p).parent == schedules}
        assert used == files.get(rule, set()), (rule, inputs)


@pytest.mark.parametrize("key, value, message", [
    ("denoising.sigma", -0.5, "denoising"),
    ("arms", [], "arms"),  # an arm entry itself is checked by ddep.sweep.parse_arm (tests/test_arms.py)
    ("datasets.builtin.fractions", ["1/0"], "fractions"),
])
def test_a_bad_config_value_gets_the_schema_error_naming_the_key(tmp_path, key, value, message):
    ws = workspace(tmp_path)
    cfg = yaml.safe_load((ws / "config/config.yaml").read_text())
    node = cfg
    *parents, leaf = key.split(".")
    for k in parents:
        node = node[k]
    node[leaf] = value
    (ws / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(ws, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Error validating config file" in out and message in out, out[-2000:]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke grid run once through Snakemake; its workspace and config."""
    ws = workspace(tmp_path_factory.mktemp("smoke"))
    snakemake(ws, "--configfile", "config/smoke.yaml")
    return ws, yaml.safe_load((ws / "config/smoke.yaml").read_text())


# One setting per ablation axis in config/smoke.yaml: its pretraining's name and the values the
# checkpoint, the run JSON, runs.csv and summary.csv must carry.
AXIS_RUNS = {
    "sigma interval": ("dep_sU0.1-0.4", dict(sigma="U(0.1,0.4)", formulation="unscaled", target="eps", noise_conditioning=False)),
    "formulation": ("dep_s0.2_scaled_x", dict(sigma="0.2", formulation="scaled", target="x", noise_conditioning=False)),
    "target": ("dep_s0.2_scaled_x", dict(sigma="0.2", formulation="scaled", target="x", noise_conditioning=False)),
    "noise_conditioning": ("dep_sU0.1-0.4_cond", dict(sigma="U(0.1,0.4)", formulation="unscaled", target="eps", noise_conditioning=True)),
}


@pytest.mark.slow
@pytest.mark.parametrize("axis", AXIS_RUNS)
def test_each_ablation_axis_reaches_its_pretraining_and_every_result_table(smoke_run, axis):
    import json

    import pandas as pd

    from ddep.train.jobs import read_checkpoint_meta
    ws, _ = smoke_run
    name, want = AXIS_RUNS[axis]
    meta = read_checkpoint_meta(ws / f"resources/weights/builtin/transunet_tiny/{name}.pth")  # what the job used
    assert {k: meta[k] for k in want} == want
    run = json.loads((ws / f"resources/runs/builtin/transunet_tiny/8/{name}/seed0.json").read_text())
    assert {k: run[k] for k in want} == want
    as_csv = {**want, "noise_conditioning": "on" if want["noise_conditioning"] else "off"}
    for table in ("runs", "summary"):
        df = pd.read_csv(ws / f"results/{table}.csv", dtype=str, keep_default_na=False)
        rows = df[(df.arm == "dep") & (df.label_fraction == "8")]
        assert sum((rows[list(as_csv)] == pd.Series(as_csv)).all(axis=1)) == 1, (table, as_csv)
    paired = pd.read_csv(ws / "results/paired.csv", dtype=str, keep_default_na=False)
    assert f"{name} - dep_s0.2" in set(paired.comparison)
    table = (ws / "results/tables/builtin_transunet_tiny_noise.md").read_text()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()
             if line.startswith("| DeP")]
    assert ["DeP", "8 (8)", *as_csv.values()] in [c[:6] for c in cells]


@pytest.mark.slow
def test_smoke_grid_end_to_end_and_rerun_of_exactly_the_missing_run(smoke_run):
    ws, cfg = smoke_run
    import pandas as pd
    runs = pd.read_csv(ws / "results/runs.csv", keep_default_na=False)
    assert len(runs) == expected_counts(cfg)["finetune"]
    assert set(runs.arm) == {"none", "21k", "dep", "ddep"}
    # the second model: its four arms, its own tables, figures and claims (differences within it)
    seg = runs[runs.model == "segformer_b0"]
    assert sorted(seg.arm) == sorted(["none", "21k", "dep", "ddep"])
    for f in ("summary.csv", "paired.csv", "tables/builtin_transunet_tiny_label_efficiency.md",
              "tables/builtin_segformer_b0_label_efficiency.md", "pretrainings.csv",
              "tables/claims.md", "tables/builtin_transunet_tiny_noise.md"):
        assert (ws / "results" / f).stat().st_size > 0
    # One seed: every claim has one pair; the sigma claim finds the interval run by its label.
    claims = pd.read_csv(ws / "results/claims.csv", keep_default_na=False)
    assert set(claims.verdict) == {"not shown (n < 2)"}
    assert set(claims.fragile.astype(str)) == {"False"}  # no interval, never fragile
    assert "DeP: sigma 0.2 - U(0.1,0.4)" in set(claims.comparison)
    assert set(claims.model) == {"transunet_tiny", "segformer_b0"}
    pre = pd.read_csv(ws / "results/pretrainings.csv", keep_default_na=False)
    assert set(pre.model) == {"transunet_tiny", "segformer_b0"}
    for f in ("builtin_transunet_tiny_label_efficiency.png", "builtin_transunet_tiny_noise.pdf",
              "builtin_transunet_tiny_claims.png", "builtin_segformer_b0_label_efficiency.png",
              "builtin_segformer_b0_claims.png"):
        assert (ws / "figures" / f).stat().st_size > 0

    victim = next((ws / "resources/runs").rglob("seed0.json"))
    victim.unlink()
    counts = job_counts(snakemake(ws, "-n", "--configfile", "config/smoke.yaml").stdout)
    assert counts == {"finetune": 1, "aggregate": 1, "figures": 1, "all": 1}
    snakemake(ws, "--configfile", "config/smoke.yaml")
    assert victim.exists()


def test_the_mmseg_worked_example_runs_on_the_smoke_grids_outputs(smoke_run):
    """docs/mmseg_configs.md's worked example names the default run's files (config/config.yaml's smallest fraction,
    its first seed, DDeP at its default setting, the last checkpoint of its fine-tune schedule), and its two
    commands, run as written with those names swapped for the smoke grid's, retrain and test the smoke grid's saved
    config with plain mmseg and get the job's own mIoU back."""
    from ddep.sweep import NoiseSetting, fraction_slug, run_name
    from ddep.sweep_config import load_config, stage_schedule

    ws, smoke = smoke_run
    block = (REPO / "docs/mmseg_configs.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]

    def names(cfg: dict) -> tuple[str, str]:
        [(dataset, spec)] = [(k, v) for k, v in cfg["datasets"].items()]
        run = f"{fraction_slug(spec['fractions'][0])}/{run_name('ddep', NoiseSetting.from_config(cfg['denoising']))}"
        iters = stage_schedule(cfg, dataset, "finetune")["train_cfg"]["max_iters"]
        return f"/{run}/seed{cfg['seeds'][0]}", f"/iter_{iters}.pth"

    config = load_config([str(REPO / "config/config.yaml")])
    default = names(config)
    assert all(name in block for name in default), (default, block)  # the paths are the default run's
    for old, new in zip(default, names(smoke)):
        block = block.replace(old, new)
    block = block.replace(f"work/seed{config['seeds'][0]}", f"work/seed{smoke['seeds'][0]}")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-ec", block], cwd=ws, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_json = ws / f"resources/runs/builtin/transunet_tiny{names(smoke)[0]}.json"
    miou = float(re.findall(r"mIoU: ([0-9.]+)", proc.stdout + proc.stderr)[-1])
    assert miou == json.loads(run_json.read_text())["mIoU"]
