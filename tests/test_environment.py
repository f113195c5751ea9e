"""The two dependency lists agree, and every pin is exact."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILT_BY_INSTALL_SH = {"mmcv"}  # sdist patched and built against torch (see install.sh)


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert m, f"not an exact pin: {line!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_carries_the_pyproject_pins():
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = _pins(pip)
    assert conda_pins == {k: v for k, v in project.items() if k not in BUILT_BY_INSTALL_SH}
    assert BUILT_BY_INSTALL_SH <= set(project)


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    for name, pinned in project.items():
        assert version(name).split("+")[0] == pinned, name


def test_optional_extras_are_exact_pins_and_installed_ones_match():
    from importlib.metadata import PackageNotFoundError, version
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "mmpretrain" in extras
    for name, pinned in _pins([d for deps in extras.values() for d in deps]).items():
        try:
            assert version(name).split("+")[0] == pinned, name
        except PackageNotFoundError:  # an extra that this install left out
            pass
