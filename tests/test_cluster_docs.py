"""The README's cluster checklist and docs/cluster.md's commands work as written, as far as they run without a GPU,
a download or an account: mmseg's converters where the commands say, the weights command of the pinned
huggingface_hub, the converters' extra, the partition edit, and a box that is current."""
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from ddep.checkpoints import HUB_DOWNLOAD, HUB_HINT
from ddep.data.table import CONVERTERS, DATASET_DEFS, DETAIL_API
from ddep.readme import fill_readme

REPO = Path(__file__).resolve().parents[1]
README, CLUSTER = (REPO / "README.md").read_text(), (REPO / "docs/cluster.md").read_text()
VENV_BIN = Path(sys.executable).parent


def shell(command: str, **kw) -> subprocess.CompletedProcess:
    """`command` in bash with this environment's python first on PATH (as an activated venv)."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, **kw)


def test_every_converter_the_docs_and_messages_name_exists_in_the_installed_mmseg():
    folder = Path(shell(f'echo "{CONVERTERS}"').stdout.strip())
    assert folder.is_dir() and folder.name == "dataset_converters" and ".mim" in folder.parts, folder
    assert f'export CONVERTERS="{CONVERTERS}"' in CLUSTER  # the checklist defines it as the messages do
    named = {m for text in (README, CLUSTER, (REPO / "docs/data.md").read_text(),
                            *(d.prepare for d in DATASET_DEFS.values()))
             for m in re.findall(r"\$(?:CONVERTERS|\{CONVERTERS\}|\(python[^)]*\)/\.mim/tools/dataset_converters)/"
                                 r"(\w+\.py)", text)}
    assert {"cityscapes.py", "pascal_context.py"} <= named
    assert all((folder / name).is_file() for name in named), sorted(named)
    assert "tools/dataset_converters" not in re.sub(r"\.mim/tools/dataset_converters", "", README + CLUSTER)


def test_the_converters_dependencies_are_named_or_pinned():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [d.split("==")[0] for d in extras["converters"]] == ["cityscapesscripts"]
    assert "DDEP_EXTRAS=converters bash install.sh" in README and "DDEP_EXTRAS=converters bash install.sh" in CLUSTER
    assert DETAIL_API.removeprefix("pip install ") in CLUSTER and DETAIL_API in DATASET_DEFS["pascal_context59"].prepare


def test_the_weights_command_exists_in_the_pinned_huggingface_hub():
    """The command the preflight's message and the checklist name is the installed hub's (`hf`; its old
    `huggingface-cli` is gone), and it takes a repo id."""
    exe, sub = HUB_DOWNLOAD.split()[:2]
    assert (VENV_BIN / exe).is_file(), f"{exe} is not in {VENV_BIN}"
    assert not (VENV_BIN / "huggingface-cli").exists()
    proc = subprocess.run([VENV_BIN / exe, sub, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "REPO_ID" in proc.stdout, proc.stdout + proc.stderr
    assert f"`{HUB_DOWNLOAD}`" in HUB_HINT and f"`{HUB_DOWNLOAD}`" in README and f"`{HUB_DOWNLOAD}`" in CLUSTER


def test_the_partition_edit_of_the_checklist_gives_a_profile_with_partition_and_account(tmp_path):
    [command] = {m for m in re.findall(r"`(sed -i [^`]*slurm/config\.yaml)`", README + CLUSTER)}
    shutil.copytree(REPO / "slurm", tmp_path / "slurm")
    assert shell(command.replace("YOURS", "a100"), cwd=tmp_path).returncode == 0
    resources = yaml.safe_load((tmp_path / "slurm/config.yaml").read_text())["default-resources"]
    assert resources["slurm_partition"] == "a100" and resources["slurm_account"] == "a100"
    assert resources["slurm_extra"] == "'--signal=TERM@300'"  # the rest kept


def test_the_checklist_is_in_order_and_the_box_is_current(tmp_path):
    section = README[README.index("## Running the paper's experiment on a cluster"):README.index("## Where to read")]
    order = ["export HF_HOME=", "bash install.sh", "snakemake estimate", "hf download", "slurm_partition",
             "ddep check --configfile config/paper.yaml", "--profile slurm"]
    assert [section.index(s) for s in order] == sorted(section.index(s) for s in order)
    page = tmp_path / "README.md"
    page.write_text(README)
    assert "benchmarks/throughput.csv" in fill_readme(page, REPO)
    assert page.read_text() == README, "README.md's generated blocks are stale: run `ddep readme`"
    box = section[section.index("<!-- generated from benchmarks/throughput.csv -->"):]
    assert "7.2% MFU" in box and "NCCL" in box and "gloo" in box and "unlabelled_crop" in box
    assert "denoising.formulation" in box and "resources.<rule>.gpu" in box
    assert len(README.splitlines()) <= 300
