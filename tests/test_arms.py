"""Arms as records (ddep.sweep.Arm): the paper's four are presets whose runs are the committed runs, job for job;
arms of the user's own come from the config alone, share pretraining exactly when their records agree, and a bad
entry stops before any job with one line naming the key and the fix."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ddep.sweep import (PRESET_ARMS, Arm, ArmError, finetune_jobs, parse_arm, pretrainings, sweep_arms)

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEDULES = REPO / "ddep/configs/_base_/schedules"


def dry_run_jobs(text: str) -> list[str]:
    """Every job of a `snakemake -n -p` printout: rule, inputs, outputs and shell command (one JSON line each,
    sorted; what a job does, without its timestamps, ids and reasons)."""
    jobs, job = [], None
    for line in text.splitlines():
        s = line.strip()
        if m := re.fullmatch(r"(?:local)?rule (\w+):", s):
            job = {"rule": m.group(1)}
            jobs.append(job)
        elif job is not None:
            for key in ("input", "output"):
                if s.startswith(f"{key}: "):  # less the schedule files, an input since (tests/test_workflow.py)
                    job[key] = sorted(p for p in s[len(key) + 2:].split(", ") if Path(p).parent != SCHEDULES)
            if s.startswith("Shell command: "):
                job["shell"] = s[len("Shell command: "):]
    return sorted(json.dumps(j, sort_keys=True) for cell in jobs for j in one_job_per_seed(cell))


def one_job_per_seed(job: dict) -> list[dict]:
    """A job of a cell's seeds (`seeds_in_one_job`) as the one-seed jobs it stands for: each seed's
    split, output, log and `--seed`, the rest as it is."""
    if job["rule"] != "finetune_seeds":
        return [job]
    seeds = re.search(r" --seed ((?:\d+ ?)+) ", job["shell"]).group(1).split()
    runs = []
    for seed in seeds:
        own = re.compile(rf"seed{seed}\.(json|txt)$")
        shell = job["shell"].replace(" --seed " + " ".join(seeds) + " ", f" --seed {seed} ")
        runs.append(dict(rule="finetune",
                         input=[p for p in job["input"] if own.search(p) or "_seed" not in p],
                         output=[p for p in job["output"] if own.search(p)],
                         shell=shell.replace("{seed}", seed).replace("/seeds.log", f"/seed{seed}.log")))
    return runs


def snakemake_dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=600)


def workspace(tmp_path: Path) -> Path:
    import shutil
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


# --- the presets: the committed runs, unchanged --------------------------------------------------

@pytest.mark.parametrize("config, target", [("config", ""), ("ablation", ""), ("models", ""), ("smoke", ""),
                                            ("config", "tune")])
def test_preset_arms_run_exactly_the_jobs_of_before_the_records(tmp_path, config, target):
    """tests/golden/dry_run_{config}[_{target}].jsonl: every job of `snakemake [target] -n -p` on
    config/{config}.yaml as the code before arms were records planned it (rule, inputs, outputs, the shell command
    with every option): the committed results' runs, file names and resolved configs come from these commands.
    Regenerated only where a config's recipe changed (docs/tuning.md, section 14: seeds, lr grid, DDeP's length,
    the pinned lr of the configs not yet rerun; then the ablation and models configs' reruns on the tuned recipe).
    A job of a cell's seeds (`seeds_in_one_job`) must stand for exactly the one-seed jobs of the golden file."""
    proc = snakemake_dry_run(workspace(tmp_path), *([target] if target else []), "--configfile", f"config/{config}.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    golden = (GOLDEN / f"dry_run_{config}{'_' + target if target else ''}.jsonl").read_text().splitlines()
    assert dry_run_jobs(proc.stdout) == golden


def test_no_code_branches_on_an_arm_name():
    """The names are read in the preset table only (ddep.sweep.PRESET_ARMS); what is left of the issue's count
    are the amp/launcher "none" options and the fine-tune's LR factor of a random encoder (its tuning replaces it)."""
    pattern = re.compile(r"""(==|!=| in) *\(?["'](none|21k|dep|ddep)["']|DENOISING_ARMS|SUPERVISED_ARMS""")
    hits = [f"{path.relative_to(REPO)}:{i}: {line.strip()}"
            for folder in ("ddep", "workflow") for path in sorted((REPO / folder).rglob("*"))
            if path.suffix in (".py", ".smk") or path.name == "Snakefile"
            for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert len(hits) <= 8, "\n".join(hits)
    assert not [h for h in hits if "ARMS" in h], hits


# --- arms of the user's own, from the config alone -------------------------------------------------

def default_config(arms: list) -> dict:
    """config/config.yaml (schema defaults filled in) with these arms."""
    from ddep.sweep_config import load_config
    return {**load_config([str(REPO / "config/config.yaml")]), "arms": arms}


UNFROZEN = {"name": "ddep-unfrozen", "encoder": "supervised", "decoder": "denoise", "unlabelled": "source"}
DEP_SOURCE = {"name": "dep-source", "decoder": "denoise", "unlabelled": "source"}
DDEP_AGAIN = {"name": "ddep-again", "encoder": "supervised", "decoder": "denoise", "frozen_encoder": True,
              "unlabelled": "source"}


def test_pretraining_is_shared_exactly_when_records_agree():
    config = default_config(["none", "21k", "dep", "ddep", UNFROZEN, DEP_SOURCE, DDEP_AGAIN])
    names = sorted(name for _, _, name in pretrainings(config))
    # ddep-again is DDeP's record under another name: DDeP's pretraining; the other two differ in a field
    assert names == ["ddep-unfrozen_s0.2", "ddep_s0.2", "dep-source_s0.2", "dep_s0.2"]
    runs = {j["run"]: j["pretraining"] for j in finetune_jobs(config)}
    assert runs["ddep-again_s0.2"] == "ddep_s0.2" and runs["ddep_s0.2"] == "ddep_s0.2"
    assert runs["ddep-unfrozen_s0.2"] == "ddep-unfrozen_s0.2" and runs["none"] is None
    # listed without the preset, the same record still takes the preset's pretraining (and file)
    alone = default_config(["none", DDEP_AGAIN])
    assert [name for _, _, name in pretrainings(alone)] == ["ddep_s0.2"]


def selection(arms: list, fractions: list[str]) -> dict:
    """A selection file (ddep.tuning) giving every cell of the built-in tiny model one fine-tune setting."""
    cells = {f: {(a if isinstance(a, str) else a["name"]): {"setting": {"lr": 0.003, "encoder_lr_mult": 0.1}}
                 for a in arms} for f in fractions}
    return {"provenance": {"rule": "test"}, "settings": {"builtin": {"transunet_tiny": cells}}}


def test_the_arm_fields_reach_the_jobs_commands(tmp_path):
    ws = workspace(tmp_path)
    overlay, arms = ws / "config/mine.yaml", ["none", "ddep", UNFROZEN, DEP_SOURCE, DDEP_AGAIN]
    (ws / "config/selection/mine.yaml").write_text(yaml.safe_dump(selection(arms, ["1/30", "1/1"])))
    overlay.write_text(yaml.safe_dump({"arms": arms, "tuning": {"selection": "config/selection/mine.yaml"}}))
    proc = snakemake_dry_run(ws, "--configfile", "config/config.yaml", str(overlay.relative_to(ws)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    shell = {json.loads(j)["output"][0]: json.loads(j).get("shell", "") for j in dry_run_jobs(proc.stdout)
             if "output" in json.loads(j)}
    weights = "resources/weights/builtin/transunet_tiny"
    unfrozen = shell[f"{weights}/ddep-unfrozen_s0.2.json"]
    # the supervised encoder, the source images at their crop, unfrozen (what the job assumes of DDeP, reversed)
    assert f"--encoder-weights {weights}/supervised.safetensors" in unfrozen
    assert "--unlabelled resources/data/builtin/source/train --image-crop 64 64" in unfrozen
    assert "--no-freeze-encoder" not in unfrozen and "--freeze-encoder" not in unfrozen  # any arm but DDeP: unfrozen
    source = shell[f"{weights}/dep-source_s0.2.json"]
    assert "--unlabelled resources/data/builtin/source/train --image-crop 64 64" in source
    assert "--encoder-weights" not in source
    seed = yaml.safe_load((ws / "config/config.yaml").read_text())["seeds"][0]
    again = shell[f"resources/runs/builtin/transunet_tiny/1_30/ddep-again_s0.2/seed{seed}.json"]
    assert "--arm ddep-again" in again and f"--init-from {weights}/ddep_s0.2.pth" in again
    assert f"{weights}/ddep-again_s0.2.pth" not in "".join(shell)  # shared: never trained twice


# --- bad input: one line naming the key and the fix, before any job ------------------------------------

BAD_ARMS = {  # entry -> what the one line says
    "an unknown field": ({"name": "mine", "encodr": "supervised"},
                         "arms[4] (mine).encodr: unknown field (did you mean encoder?); an arm has name, encoder, "
                         "decoder, frozen_encoder, unlabelled"),
    "an unknown value": ({"name": "mine", "decoder": "denoised"},
                         "arms[4] (mine).decoder: 'denoised' is not a decoder; use one of random, denoise"),
    "an unknown preset": ("imagenet", "arms[4]: 'imagenet' is not a preset arm (none, 21k, dep, ddep); define your "
                                      "own as a mapping {name: imagenet, encoder: ..., decoder: ...}"),
    "frozen_encoder with a random encoder": (
        {"name": "mine", "decoder": "denoise", "frozen_encoder": True},
        "arms[4] (mine).frozen_encoder: a frozen random encoder learns nothing; set encoder: supervised (or a "
        "checkpoint), or frozen_encoder: false"),
    "a name colliding with a preset": (
        {"name": "ddep", "encoder": "supervised"},
        "arms[4] (ddep).name: 'ddep' is a preset arm; list the preset by its name alone, or give yours another name "
        "(e.g. ddep-mine)"),
    "a name that cannot name a run": (
        {"name": "my_arm"}, "arms[4].name: 'my_arm': name the arm with letters, digits and . + - (it names files; "
                            "no _, which starts a run's noise setting)"),
}


@pytest.mark.parametrize("case", BAD_ARMS)
def test_a_bad_arm_entry_is_one_line_naming_the_key_and_the_fix(case):
    entry, message = BAD_ARMS[case]
    with pytest.raises(ArmError) as e:
        sweep_arms({"arms": ["none", "21k", "dep", "ddep", entry]})
    assert str(e.value) == message


def test_docs_arms_shows_the_presets_and_every_message_as_the_code_has_them():
    text = (REPO / "docs/arms.md").read_text()
    rows = {cells[0].strip("` "): cells[1:] for line in text.splitlines() if line.startswith("| `")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for name, arm in PRESET_ARMS.items():
        shown = rows[name]
        assert shown[:3] == [arm.encoder, arm.decoder, str(arm.frozen_encoder).lower()], name
        assert shown[3] == (arm.unlabelled if arm.denoised else "–"), name
    for entry, message in BAD_ARMS.values():
        assert f"`{message}`" in text, message
    assert f"``{MISSING_CHECKPOINT}``" in text


MISSING_CHECKPOINT = (
    "arms (mine).encoder: checkpoint file not found: ckpt/missing.safetensors; encoder is random, supervised, a "
    "checkpoint file (relative to the workflow's folder; make one with `ddep pretrain-supervised --out FILE`) or a "
    "timm name")


def test_a_missing_checkpoint_and_one_that_does_not_fit_are_named_before_any_job(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from ddep.preflight import find_problems
    monkeypatch.chdir(tmp_path)
    missing = default_config(["ddep", {"name": "mine", "encoder": "ckpt/missing.safetensors"}])
    assert find_problems(missing) == [MISSING_CHECKPOINT]
    state = tiny_encoder_state()
    Path("ckpt").mkdir()
    save_file({f"module.{k}": v for k, v in state.items()}, "ckpt/prefixed.safetensors")
    save_file(state, "ckpt/mine.safetensors")
    prefixed = default_config([{"name": "mine", "encoder": "ckpt/prefixed.safetensors"}])
    [problem] = find_problems(prefixed)
    assert problem.startswith(f"arms (mine).encoder: ckpt/prefixed.safetensors has 0 of the {len(state)} tensors of "
                              f"transunet_tiny's encoder by name: expected no prefix (e.g. "), problem
    assert problem.endswith(f"its keys sit under 'module.' ({len(state)} match without it): save them without that "
                            f"prefix"), problem
    assert find_problems(default_config([{"name": "mine", "encoder": "ckpt/mine.safetensors"}])) == []


def tiny_encoder_state() -> dict:
    """The tiny TransUNet encoder's tensors as `ddep pretrain-supervised` saves them (timm's names)."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import ddep.models  # noqa: F401
    from ddep.configs import segmentor_cfg
    from ddep.models.weights import encoder_state_dict
    register_all_modules(init_default_scope=False)
    return encoder_state_dict(MODELS.build(segmentor_cfg("transunet_tiny", 2, (64, 64))["backbone"]))


def test_source_images_an_arm_asks_for_must_be_named():
    from ddep.preflight import find_problems
    config = default_config(["none", DEP_SOURCE])
    assert find_problems(config) == []  # the built-in source set: the folder DDeP's entry names
    config["datasets"]["builtin"]["unlabelled"] = None
    assert find_problems(config) == [
        "arms (dep-source).unlabelled: source, but datasets.builtin names no source images; set "
        "datasets.builtin.unlabelled.source: FOLDER (e.g. ImageNet's train folder)"]
    config["datasets"]["builtin"]["unlabelled"] = {"source": "resources/data/builtin/source/train"}
    assert find_problems(config) == []


def test_a_bad_arm_stops_the_workflow_before_any_job(tmp_path):
    ws = workspace(tmp_path)
    overlay = ws / "config/mine.yaml"
    overlay.write_text(yaml.safe_dump({"arms": ["none", "21k", "dep", "ddep", BAD_ARMS["an unknown value"][0]]}))
    proc = snakemake_dry_run(ws, "--configfile", "config/config.yaml", "config/mine.yaml")
    assert proc.returncode != 0
    assert BAD_ARMS["an unknown value"][1] in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout


# --- the comparisons table and figure: the user's arms against the presets ------------------------------

def test_user_arms_get_comparisons_and_never_enter_the_claims(tmp_path):
    import statistics

    import pandas as pd

    from ddep.analysis.common import minimal_detectable_effect, t_critical
    from ddep.analysis.figures import write_figures
    from ddep.analysis.results import write_results
    from test_analysis import MIOU, run_record, write_json

    mine = {("mine", "-", "1/30"): [46.0, 45.0, 47.0], ("mine", "-", "1/4"): [64.0, 60.0, 66.0]}
    files = {arms: [write_json(tmp_path / arms / f"{arm}_{sigma}_{lf.replace('/', '_')}_{seed}.json",
                               run_record(arm, sigma, lf, seed, v))
                    for (arm, sigma, lf), vals in table.items() for seed, v in enumerate(vals)]
             for arms, table in (("presets", MIOU), ("with_mine", {**MIOU, **mine}))}
    for arms in files:
        write_results(files[arms], tmp_path / arms / "results", quiet=True)
    presets, with_mine = (tmp_path / arms / "results" for arms in files)
    assert not (presets / "comparisons.csv").exists()  # a sweep of the presets alone: nothing new
    # the paper's claims read the presets only: an arm of the user's changes no byte of them
    assert (with_mine / "claims.csv").read_bytes() == (presets / "claims.csv").read_bytes()
    comparisons = pd.read_csv(with_mine / "comparisons.csv", dtype={"label_fraction": str})
    assert list(comparisons.claim) == [f"mine > {b}" for b in ("DDeP", "Supervised (21K)", "Random init")
                                       for _ in ("1/30", "1/4")]
    for r in comparisons.itertuples():  # paired over seeds, as the claims: mean, t CI, verdict
        base = {"DDeP": ("ddep", "0.2"), "Supervised (21K)": ("21k", "-"), "Random init": ("none", "-")}[
            r.claim.split(" > ")[1]]
        diffs = [a - b for a, b in zip(mine["mine", "-", r.label_fraction], MIOU[(*base, r.label_fraction)])]
        half = t_critical(2) * statistics.stdev(diffs) / 3 ** 0.5
        assert r.n_pairs == 3 and r.mean_diff == pytest.approx(statistics.mean(diffs))
        assert (r.ci_low, r.ci_high) == pytest.approx((r.mean_diff - half, r.mean_diff + half))
        assert r.verdict == ("holds" if r.ci_low > 0 else "contradicted" if r.ci_high < 0 else "not shown")
        assert r.mde > 0 and r.mde == pytest.approx(minimal_detectable_effect(statistics.stdev(diffs), 3, 0.95, 0.8))
    assert "mine > DDeP" in (with_mine / "tables/comparisons.md").read_text()
    files_written, _ = write_figures(with_mine, tmp_path / "figures", quiet=True)
    assert {f.name for f in files_written} >= {"toy_comparisons.png", "toy_comparisons.pdf"}
    plain, _ = write_figures(presets, tmp_path / "figures_presets", quiet=True)
    assert not [f for f in plain if "comparisons" in f.name]


# --- config/arms.yaml's arms on the smoke grid, end to end from the config alone ---------------------------

def arms_yaml_arms(checkpoint: str) -> list:
    """config/arms.yaml's arms, its encoder checkpoint file at `checkpoint`."""
    arms = yaml.safe_load((REPO / "config/arms.yaml").read_text())["arms"]
    return [dict(a, encoder=checkpoint) if isinstance(a, dict) and a.get("encoder", "").endswith(".safetensors")
            else a for a in arms]


def test_arms_yaml_is_a_valid_sweep_of_the_presets_and_four_arms_of_its_own():
    from ddep.sweep_config import load_config
    config = load_config([str(REPO / "config/arms.yaml")])
    arms = sweep_arms(config)
    own = [a for a in arms if a.name not in PRESET_ARMS]
    assert [a.name for a in arms[:4]] == list(PRESET_ARMS) and len(own) == 4
    assert any(a.denoised and a.encoder == "supervised" and not a.frozen_encoder for a in own)  # DDeP unfrozen
    assert any(a.denoised and a.encoder == "random" and a.unlabelled == "source" for a in own)  # DeP on the source
    assert any(a.checkpoint and Path(a.checkpoint).suffix == ".safetensors" for a in own)  # a checkpoint file
    assert set(config["seeds"]) == {90, 91, 92, 93, 94}  # held out: no other config uses them
    for other in REPO.glob("config/*.yaml"):
        if other.name != "arms.yaml":
            assert not set(yaml.safe_load(other.read_text()).get("seeds") or []) & set(config["seeds"]), other
    assert (config["results_dir"], config["figures_dir"]) == ("results/arms", "figures/arms")


@pytest.mark.slow
def test_a_checkpoint_arm_runs_the_smoke_grid_through_the_whole_dag(tmp_path):
    """The user's own encoder, trained by `ddep pretrain-supervised` outside the sweep and saved to a path, named
    by `encoder: <path>` in config/arms.yaml's arms (smoke grid: one model, one seed): every job runs, the
    comparisons and their figure are written, the claims keep the presets."""
    import pandas as pd

    from ddep.train.jobs import read_checkpoint_meta
    ws = workspace(tmp_path)

    def snakemake(*args):
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=ws,
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        return proc

    snakemake("resources/data/builtin_smoke/meta.json", "--configfile", "config/smoke.yaml")
    proc = subprocess.run([sys.executable, "-m", "ddep.cli", "pretrain-supervised", "--data-root",
                           "resources/data/builtin_smoke", "--model", "tiny", "--seed", "1", "--iters", "10",
                           "--out", "my/encoder.safetensors", "--work-dir", "work/my_encoder"],
                          cwd=ws, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    overlay = {"models": ["tiny"], "ablations": [], "arms": arms_yaml_arms("my/encoder.safetensors"),
               "results_dir": "results/arms", "figures_dir": "figures/arms"}
    (ws / "config/mine.yaml").write_text(yaml.safe_dump(overlay))
    snakemake("--configfile", "config/smoke.yaml", "config/mine.yaml")

    runs = pd.read_csv(ws / "results/arms/runs.csv", keep_default_na=False)
    own = [a["name"] for a in overlay["arms"] if isinstance(a, dict)]
    assert sorted(runs.arm) == sorted([*PRESET_ARMS, *own])
    run = json.loads((ws / "resources/runs/builtin/transunet_tiny/8/my-encoder/seed0.json").read_text())
    assert run["pretrained"] == "my/encoder.safetensors"  # the file, as the encoder it fine-tuned from
    meta = read_checkpoint_meta(ws / "resources/weights/builtin/transunet_tiny/my-encoder-ddep_s0.2.pth")
    assert meta["arm"] == "my-encoder-ddep" and meta["encoder_weights"] == "my/encoder.safetensors"
    assert "freeze_encoder=True" in (ws / "resources/weights/builtin/transunet_tiny/my-encoder-ddep_s0.2.py").read_text()
    assert "freeze_encoder=False" in (ws / "resources/weights/builtin/transunet_tiny/ddep-unfrozen_s0.2.py").read_text()
    comparisons = pd.read_csv(ws / "results/arms/comparisons.csv", keep_default_na=False)
    assert sorted(comparisons.claim) == sorted(f"{a} > {b}" for a in own
                                               for b in ("DDeP", "Supervised (21K)", "Random init"))
    assert set(comparisons.verdict) == {"not shown (n < 2)"}  # one seed: no interval
    claims = pd.read_csv(ws / "results/arms/claims.csv", keep_default_na=False)
    assert not any(a in c for c in claims.comparison for a in own)
    assert (ws / "figures/arms/builtin_comparisons.png").stat().st_size > 0


def test_each_arm_of_a_sweep_has_its_own_colour_in_every_figure_and_the_presets_keep_theirs():
    """config/arms.yaml's eight arms: eight colours, the paper's four as in every figure, the same in each figure of
    the sweep whatever order its rows come in."""
    from ddep.analysis.common import ARM_COLOURS
    from ddep.analysis.figures import arm_colours
    names = [a if isinstance(a, str) else a["name"] for a in arms_yaml_arms("my/encoder.safetensors")]
    colours = arm_colours(names)
    assert len(set(colours.values())) == len(names) == 8
    assert {a: colours[a] for a in ARM_COLOURS} == ARM_COLOURS
    assert arm_colours(reversed(names)) == colours
