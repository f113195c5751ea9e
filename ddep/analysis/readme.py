"""``ddep readme``: every block between ``<!-- generated from results/tables/NAME.md -->`` and
``<!-- end generated -->`` in the README and the pages of ``docs/`` is replaced by that file, so
their numbers are never typed."""

from __future__ import annotations

import re
from pathlib import Path

from .common import atomic_write_text

BLOCK = re.compile(r"(<!-- generated from (?P<path>\S+) -->\n).*?(<!-- end generated -->)", re.S)


def fill_readme(readme: str | Path, root: str | Path = ".") -> list[str]:
    """Rewrite the generated blocks of ``readme`` from the files they name (relative to
    ``root``); returns the files used. A named file that is missing is an error."""
    readme, root = Path(readme), Path(root)
    used = []

    def block(m: re.Match) -> str:
        source = root / m.group("path")
        if not source.is_file():
            raise FileNotFoundError(f"{readme} names {source}, which does not exist: run the "
                                    f"workflow (snakemake --cores all) first")
        used.append(m.group("path"))
        return m.group(1) + source.read_text().rstrip("\n") + "\n" + m.group(3)

    text = BLOCK.sub(block, readme.read_text())
    atomic_write_text(readme, text)
    return used


def documents(root: str | Path = ".") -> list[Path]:
    """The files whose blocks ``ddep readme`` fills: README.md and every docs/*.md."""
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
