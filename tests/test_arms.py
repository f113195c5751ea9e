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
                if s.startswith(f"{key}: "):
                    job[key] = sorted(s[len(key) + 2:].split(", "))
            if s.startswith("Shell command: "):
                job["shell"] = s[len("Shell command: "):]
    return sorted(json.dumps(j, sort_keys=True) for j in jobs)


def snakemake_dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=600)


def workspace(tmp_path: Path) -> Path:
    import shutil
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


# --- the presets: the committed runs, unchanged --------------------------------------------------

@pytest.mark.parametrize("config", ["config", "ablation", "models", "smoke"])
def test_preset_arms_run_exactly_the_jobs_of_before_the_records(tmp_path, config):
    """tests/golden/dry_run_{config}.jsonl: every job of `snakemake -n -p` on config/{config}.yaml as the code
    before arms were records planned it (rule, inputs, outputs, the shell command with every option): the
    committed results' runs, file names and resolved configs come from these commands."""
    proc = snakemake_dry_run(workspace(tmp_path), "--configfile", f"config/{config}.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    golden = (GOLDEN / f"dry_run_{config}.jsonl").read_text().splitlines()
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
