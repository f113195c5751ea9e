"""The ``ddep aggregate|figures|readme`` subcommands, mounted by ``ddep.cli``. Bad input raises ValueError
(RunFileError is one) or FileNotFoundError, which ``ddep.cli.main`` turns into its usage exit code."""

import argparse
import glob
import re
from pathlib import Path

from ddep.io import atomic_write_text
from ddep.sweep import NoiseSetting

DEFAULT_RUNS_GLOB = "resources/runs/**/*.json"
# A generated block of the README and docs/*.md: the named file's text goes between the two comments.
BLOCK = re.compile(r"(<!-- generated from (?P<path>\S+) -->\n).*?(<!-- end generated -->)", re.S)


def _noise_setting(name: str) -> NoiseSetting:  # argparse shows an ArgumentTypeError's own message
    try:
        return NoiseSetting.from_slug(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def fill_readme(readme: str | Path, root: str | Path = ".") -> list[str]:
    """Fill the generated blocks of `readme` from the files they name (relative to `root`); returns those files."""
    text, root = Path(readme).read_text(), Path(root)
    used = [m.group("path") for m in BLOCK.finditer(text)]
    if missing := [root / path for path in used if not (root / path).is_file()]:
        raise FileNotFoundError(f"{readme} names {missing[0]}, which does not exist: run the workflow "
                                f"(snakemake --cores all) first")
    sources = {path: (root / path).read_text().rstrip("\n") for path in used}
    atomic_write_text(readme, BLOCK.sub(lambda m: f"{m.group(1)}{sources[m.group('path')]}\n{m.group(3)}", text))
    return used


def documents(root: str | Path = ".") -> list[Path]:
    """The files whose blocks ``ddep readme`` fills: README.md and every docs/*.md."""
    return [Path(root) / "README.md", *sorted((Path(root) / "docs").glob("*.md"))]


def aggregate_main(args: argparse.Namespace) -> int:
    from .results import write_results
    paths = list(args.runs) if args.runs else sorted(glob.glob(args.runs_glob, recursive=True))
    if not paths:  # almost always a wrong glob or working directory
        raise ValueError(f"no run files match {args.runs_glob!r}")
    write_results(paths, args.out, default_noise=args.default_noise, pretraining_paths=args.pretrainings or ())
    return 0


def figures_main(args: argparse.Namespace) -> int:
    from .figures import write_figures  # matplotlib only when figures are wanted
    write_figures(args.results, args.out, default=args.default_noise)
    return 0


def readme_main(args: argparse.Namespace) -> int:
    for path in args.readme or documents(args.root):
        used = fill_readme(path, args.root)
        if used or args.readme:
            print(f"{path}: {len(used)} generated block(s) from {', '.join(used) or 'nothing'}")
    return 0


def add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    """Mount `aggregate`, `figures` and `readme` on a subparsers object (sets ``func``)."""
    agg = subparsers.add_parser("aggregate", help="per-run JSONs -> runs/summary/paired/claims CSVs, tables")
    agg.add_argument("--runs-glob", default=DEFAULT_RUNS_GLOB, help="glob of per-run JSONs (** is any depth)")
    agg.add_argument("--runs", nargs="+", metavar="JSON", help="explicit per-run JSONs (instead of --runs-glob)")
    agg.add_argument("--out", default="results", help="folder of the CSVs and tables/")
    agg.add_argument("--pretrainings", nargs="+", metavar="JSON",
                     help="the pretraining jobs' JSONs: pretrainings.csv and tables/pretrainings.md")
    fig = subparsers.add_parser("figures", help="summary.csv, claims.csv -> PNG/PDF figures")
    fig.add_argument("--results", default="results", help="folder of summary.csv and claims.csv")
    fig.add_argument("--out", default="figures", help="output folder")
    for p, func in ((agg, aggregate_main), (fig, figures_main)):
        p.add_argument("--default-noise", type=_noise_setting, metavar="SETTING",
                       help="DeP/DDeP's setting in the label-efficiency table and the claims, the ablations' "
                            "baseline, as in the weights' names: s0.2, sU0.1-0.4_scaled_x_cond (default: the "
                            "setting with the most results)")
        p.set_defaults(func=func)
    p = subparsers.add_parser("readme", help="generated blocks of README.md and docs/*.md <- results/tables/*.md")
    p.add_argument("--readme", nargs="+", type=Path, metavar="FILE", help="default: README.md and docs/*.md")
    p.add_argument("--root", default=".", help="folder the blocks' paths are relative to")
    p.set_defaults(func=readme_main)
