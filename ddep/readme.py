"""``ddep readme``'s work: refill the generated blocks of README.md and docs/*.md from the files they name, so
that the numbers in the prose are the committed results'. A block is the named file's text between two
comments::

    <!-- generated from results/tables/claims.md -->
    ...
    <!-- end generated -->

A block naming a Python file of :data:`GENERATORS` gets that generator's text instead of the file's own.
"""
import re
from pathlib import Path

from ddep.io import atomic_write_text
from ddep.run_file import outputs_markdown


def _cluster_box() -> str:
    from ddep.protocol import cluster_box  # mmengine's config reader: only when a page has the box
    return cluster_box()


# Blocks whose text is made by code: docs/outputs.md's column tables from ddep/run_file.py's OUTPUT_COLUMNS, the
# README's box of what has run where from the GPU measurements (and the protocol's rows).
GENERATORS = {"ddep/run_file.py": outputs_markdown, "benchmarks/throughput.csv": _cluster_box}

BLOCK = re.compile(r"(<!-- generated from (?P<path>\S+) -->\n).*?(<!-- end generated -->)", re.S)


def fill_readme(readme: str | Path, root: str | Path = ".") -> list[str]:
    """Fill the generated blocks of `readme` from the files they name (relative to `root`); returns those files."""
    text, root = Path(readme).read_text(), Path(root)
    used = [m.group("path") for m in BLOCK.finditer(text)]
    if missing := [root / path for path in used if path not in GENERATORS and not (root / path).is_file()]:
        raise FileNotFoundError(f"{readme} names {missing[0]}, which does not exist: run the workflow "
                                f"(snakemake --cores all) first")
    sources = {path: GENERATORS[path]() if path in GENERATORS else (root / path).read_text().rstrip("\n")
               for path in used}
    atomic_write_text(readme, BLOCK.sub(lambda m: f"{m.group(1)}{sources[m.group('path')]}\n{m.group(3)}", text))
    return used


def documents(root: str | Path = ".") -> list[Path]:
    """The files whose blocks ``ddep readme`` fills: README.md and every docs/*.md."""
    return [Path(root) / "README.md", *sorted((Path(root) / "docs").glob("*.md"))]

