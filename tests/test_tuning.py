"""The tuning stage: one rule for every arm (ddep.tuning), the selection the held-out fine-tunes
read, and no training setting chosen from an arm's name."""
import json
import re

import pytest
import yaml

from ddep.tuning import RULE, failed, grid_points, held_out_settings, point_slug, select
from test_workflow import REPO, snakemake, workspace

GRID = {"lr": [0.001, 0.003], "encoder_lr_mult": [0.1, 1.0]}


def record(arm, point, seed, miou, status="ok", loss=0.5):
    return dict(dataset="builtin", model="transunet_tiny", label_fraction="1/30", arm=arm, point=point,
                seed=seed, mIoU=miou, tuning=dict(status=status), training=dict(final_loss=loss))


def test_the_rule_takes_the_best_mean_and_the_first_point_on_a_tie():
    points = grid_points(dict(grid=GRID))
    assert [point_slug(p) for p in points] == [
        "lr-0.001__encoder_lr_mult-0.1", "lr-0.001__encoder_lr_mult-1",
        "lr-0.003__encoder_lr_mult-0.1", "lr-0.003__encoder_lr_mult-1"]
    scores = {0: (30.0, 32.0), 1: (35.0, 33.0), 2: (34.0, 34.0), 3: (20.0, 50.0)}  # means 31, 34, 34, 35
    records = [record("none", points[i], seed, m) for i, ms in scores.items() for seed, m in zip((100, 101), ms)]
    assert select(records, points)[("builtin", "transunet_tiny", "1/30", "none")]["setting"] == points[3]
    # the best point fails on one seed: it is out, and the tie of 34.0 goes to the first listed
    records[-1] = record("none", points[3], 101, 50.0, status="failed")
    pick = select(records, points)[("builtin", "transunet_tiny", "1/30", "none")]
    assert pick["setting"] == points[1] and pick["development_mIoU"] == 34.0 and pick["seeds"] == [100, 101]


def test_a_non_finite_loss_fails_a_point_and_a_cell_without_survivors_stops_with_its_name():
    points = grid_points(dict(grid={"lr": [0.001, 0.003]}))
    assert failed(record("dep", points[0], 100, 30.0, loss=float("nan")))
    assert not failed(record("dep", points[0], 100, 30.0))
    records = [record("dep", p, 100, 30.0, loss=float("inf")) for p in points]
    with pytest.raises(ValueError, match="builtin/transunet_tiny/1/30/dep"):
        select(records, points)
    assert "failed" in RULE and "tie" in RULE


def test_no_training_setting_is_chosen_from_an_arm_name_in_the_package():
    arm_test = re.compile(r"""(==|!=|\bin)\s*\(?["'](none|21k|dep|ddep)["']""")
    for path in (REPO / "ddep").rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if arm_test.search(line):
                assert not re.search(r"\blr\b|lr_mult|optim|schedule", line), f"{path}:{n}: {line.strip()}"
    jobs = (REPO / "ddep/train/jobs.py").read_text()
    assert "with_encoder_lr_mult" not in jobs  # the LR factor comes from the selection alone


@pytest.mark.parametrize("config_file", sorted(p.name for p in (REPO / "config").glob("*.yaml")
                                                if (yaml.safe_load(p.read_text()) or {}).get("tuning")))
def test_every_committed_selection_is_the_tuning_rules_on_its_configs_grid_and_seeds(config_file):
    """No committed config fine-tunes at a hand-set recipe: the selection it reads was written by the tuning
    stage, under the one rule, on the grid and development seeds the config names, and covers every held-out
    cell (so every arm got the same grid, seeds and rule)."""
    from ddep.sweep import finetune_jobs
    from ddep.sweep_config import load_config
    from ddep.tuning import read_selection
    config = load_config([str(REPO / "config" / config_file)])
    tuning = config["tuning"]
    provenance = read_selection(REPO / tuning["selection"])["provenance"]
    assert provenance["rule"] == RULE, config_file
    assert provenance["grid"] == tuning["grid"] and provenance["development_seeds"] == tuning["seeds"], config_file
    assert provenance["failed"] == 0 and provenance["runs"] > 0 and provenance["git_commits"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # the selection's path is relative to the workflow's folder
        settings = held_out_settings(config, finetune_jobs(config))
    assert settings and all(set(s) == set(tuning["grid"]) for s in settings.values())


def test_every_held_out_cell_needs_a_selected_setting(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    from ddep.sweep import finetune_jobs
    jobs = finetune_jobs(config)
    config["tuning"]["selection"] = str(REPO / config["tuning"]["selection"])
    settings = held_out_settings(config, jobs)
    assert len(settings) == 8 and all(set(s) == {"lr", "encoder_lr_mult"} for s in settings.values())
    doc = yaml.safe_load((REPO / "config/selection/builtin.yaml").read_text())
    del doc["settings"]["builtin"]["transunet_tiny"]["1/1"]["ddep"]
    (tmp_path / "selection.yaml").write_text(yaml.safe_dump(doc))
    config["tuning"]["selection"] = str(tmp_path / "selection.yaml")
    with pytest.raises(ValueError, match=r"no setting for builtin/transunet_tiny/1/1/ddep: rerun `snakemake tune`"):
        held_out_settings(config, jobs)
    config["tuning"]["selection"] = str(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="missing.yaml not found: run `snakemake tune`"):
        held_out_settings(config, jobs)


def _smoke_overlay(ws, **extra):
    """The smoke grid with its TransUNet alone, no ablations, development scenes and a tuning section."""
    smoke = yaml.safe_load((ws / "config/smoke.yaml").read_text())
    overlay = dict(models=["tiny"], ablations=[], datasets={"builtin": dict(
        smoke["datasets"]["builtin"], generate=dict(smoke["datasets"]["builtin"]["generate"], n_dev=4),
        heldout={"dep": None, "ddep": "resources/data/builtin_smoke/source/val"})},
        tuning=dict(selection="config/selection/smoke.yaml", grid={"lr": [0.001, 0.003]}, seeds=[7]), **extra)
    (ws / "config/tuning_overlay.yaml").write_text(yaml.safe_dump(overlay))
    return ["--configfile", "config/smoke.yaml", "config/tuning_overlay.yaml"]


def test_tune_selects_per_arm_and_the_held_out_fine_tunes_train_with_exactly_that(tmp_path):
    """`snakemake tune` on the smoke grid: every arm at every grid point on the development seed,
    evaluated on the development scenes; its selection file; then the held-out fine-tunes, each
    with its own arm's selected setting in its resolved config and its run JSON."""
    ws = workspace(tmp_path)
    args = _smoke_overlay(ws)
    snakemake(ws, "tune", *args)
    table = __import__("pandas").read_csv(ws / "results/tuning.csv")
    assert len(table) == 4 * 2 and set(table["eval_split"]) == {"dev"} and set(table["seed"]) == {7}
    assert set(table["arm"]) == {"none", "21k", "dep", "ddep"} and set(table["lr"]) == {0.001, 0.003}
    assert (ws / "figures/tuning.png").is_file() and "**" in (ws / "results/tables/tuning.md").read_text()
    selection = yaml.safe_load((ws / "config/selection/smoke.yaml").read_text())
    assert selection["provenance"]["development_seeds"] == [7]
    assert len(selection["provenance"]["development_split_sha256"]["builtin"]) == 64
    # every arm's choice is the best mean of its own rows, whatever the others chose
    for arm, rows in table.groupby("arm"):
        best = rows.loc[rows["mIoU"].idxmax(), "lr"]
        cell = selection["settings"]["builtin"]["transunet_tiny"]["8"][arm]
        assert cell["setting"] == {"lr": best}
    # Now a selection that gives each arm its own setting: the held-out fine-tunes must train with it.
    wanted = {"none": (0.002, 1.0), "21k": (0.0015, 0.25), "dep": (0.0025, 0.5), "ddep": (0.001, 0.75)}
    for arm, (lr, mult) in wanted.items():
        selection["settings"]["builtin"]["transunet_tiny"]["8"][arm] = {"setting": {"lr": lr, "encoder_lr_mult": mult}}
    (ws / "config/selection/smoke.yaml").write_text(yaml.safe_dump(selection))
    snakemake(ws, *args)
    for arm, (lr, mult) in wanted.items():
        [run] = (ws / "resources/runs/builtin/transunet_tiny/8").glob(f"{arm}*/seed0.json")
        data = json.loads(run.read_text())
        assert data["finetune_setting"]["lr"] == lr and data["finetune_setting"]["encoder_lr_mult"] == mult
        assert data["finetune_setting"]["setting_from"] == "config/selection/smoke.yaml"
        resolved = run.with_suffix(".py").read_text()
        assert f"lr={lr}" in resolved.replace(" ", "")
        assert (f"lr_mult={mult}" in resolved.replace(" ", "")) == (mult != 1.0)
    # the denoisers measured their held-out loss on images they did not train on
    pre = __import__("pandas").read_csv(ws / "results/pretrainings.csv").set_index("arm")
    assert pre.loc["dep", "heldout"].endswith("img_dir/dev") and pre.loc["dep", "heldout_images"] == 4
    assert pre.loc["ddep", "heldout"].endswith("source/val")
    assert 0.5 < pre.loc["ddep", "heldout_zero_loss"] < 1.5 and pre.loc["ddep", "heldout_loss"] > 0


def test_a_paper_datasets_development_slice_is_fixed_and_never_labelled(tmp_path):
    """Cityscapes-style: the development slice is the same for every seed and fraction, and no
    labelled split of any seed contains one of its images."""
    from ddep.data.splits import development_stems, select_split
    stems = [f"aachen/aachen_{i:06d}_000019" for i in range(2975)]
    dev = development_stems(stems, "cityscapes", 200)
    assert len(dev) == 200 and dev == development_stems(list(reversed(stems)), "cityscapes", 200)
    pool = sorted(set(stems) - set(dev))
    for seed in (0, 1, 50):
        labelled = select_split(pool, "cityscapes", "1/30", seed)
        assert len(labelled) == 93 and not set(labelled) & set(dev)  # 1/30 of the 2,775 left
    with pytest.raises(ValueError, match="development.n_images = 2975"):
        development_stems(stems, "cityscapes", 2975)


def test_tuning_on_the_paper_grid_evaluates_on_each_datasets_development_slice(tmp_path):
    """The paper grid with a tuning section (a user's choice there): every dataset's development
    slice is made once, and every tuning run evaluates on it; the held-out grid is unchanged."""
    from fake_data import fake_paper_inputs
    from test_workflow import job_counts
    ws = workspace(tmp_path)
    cfg = fake_paper_inputs(yaml.safe_load((ws / "config/paper.yaml").read_text()), tmp_path)
    for d in cfg["datasets"].values():
        d["development"] = {"n_images": 2}
    cfg["tuning"] = dict(selection="config/selection/paper.yaml", grid={"lr": [1e-4, 3e-4]}, seeds=[100])
    (ws / "config/paper.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(ws, "-n", "-p", "tune", "--configfile", "config/paper.yaml")
    counts = job_counts(proc.stdout)
    cells = sum(len(d["fractions"]) for d in cfg["datasets"].values()) * len(cfg["arms"])
    assert counts["development_split"] == 3 and counts["tune_finetune"] == cells * 2
    commands = [line for line in proc.stdout.splitlines() if "ddep finetune" in line]
    assert len(commands) == cells * 2 and all(
        re.search(r"--eval-split dev --tuning-point lr=0\.000[13] --eval-list resources/splits/\w+/development\.txt", c)
        for c in commands)
    # a held-out run needs the selection: without it the sweep stops before any job, naming the fix
    proc = snakemake(ws, "-n", "--configfile", "config/paper.yaml", check=False)
    assert proc.returncode != 0 and "config/selection/paper.yaml not found: run `snakemake tune`" in proc.stdout + proc.stderr
