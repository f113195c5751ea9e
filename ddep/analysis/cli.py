"""The ``ddep aggregate|figures|readme`` subcommands, mounted by ``ddep.cli``. Bad input raises
ValueError (RunFileError is one) or FileNotFoundError, which ``ddep.cli.main`` turns into its
usage exit code."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from ddep.sweep import NoiseSetting

DEFAULT_RUNS_GLOB = "resources/runs/**/*.json"


def _noise_setting(name: str) -> NoiseSetting:
    try:
        return NoiseSetting.from_slug(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def aggregate_main(args: argparse.Namespace) -> int:
    """Per-run JSONs -> CSVs and tables; raises ValueError when no run file matches."""
    from .results import write_results

    paths = list(args.runs) if args.runs else sorted(glob.glob(args.runs_glob, recursive=True))
    if not paths:  # almost always a wrong glob or working directory
        raise ValueError(f"no run files match {args.runs_glob!r}")
    write_results(paths, args.out, default_noise=args.default_noise,
                  pretraining_paths=args.pretrainings or ())
    return 0


def figures_main(args: argparse.Namespace) -> int:
    """summary.csv and claims.csv -> figures; raises FileNotFoundError without them."""
    from .figures import write_figures  # matplotlib only when figures are wanted

    write_figures(args.results, args.out, default=args.default_noise)
    return 0


def readme_main(args: argparse.Namespace) -> int:
    """Rewrite the generated blocks of README.md and docs/*.md from the tables they name."""
    from .readme import documents, fill_readme

    for path in args.readme or documents(args.root):
        used = fill_readme(path, args.root)
        if used or args.readme:
            print(f"{path}: {len(used)} generated block(s) from {', '.join(used) or 'nothing'}")
    return 0


def add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    """Mount `aggregate`, `figures` and `readme` on a subparsers object (sets ``func``)."""
    agg = subparsers.add_parser("aggregate", help="per-run JSONs -> runs/summary/paired/claims CSVs, tables")
    agg.add_argument("--runs-glob", default=DEFAULT_RUNS_GLOB,
                     help=f"glob of per-run JSON files, ** matches any depth "
                          f"(default: {DEFAULT_RUNS_GLOB!r})")
    agg.add_argument("--runs", nargs="+", default=None, metavar="JSON",
                     help="explicit per-run JSON files (instead of --runs-glob)")
    agg.add_argument("--out", default="results",
                     help="output directory for runs/summary/paired/claims CSVs and tables/ "
                          "(default: results)")
    agg.add_argument("--pretrainings", nargs="+", default=None, metavar="JSON",
                     help="the pretraining jobs' JSONs (beside their weights): "
                          "pretrainings.csv and tables/pretrainings.md")
    fig = subparsers.add_parser("figures", help="summary.csv, claims.csv -> PNG/PDF figures")
    fig.add_argument("--results", default="results", help="directory holding summary.csv and claims.csv (default: results)")
    fig.add_argument("--out", default="figures", help="output directory (default: figures)")
    for p, func in ((agg, aggregate_main), (fig, figures_main)):
        p.add_argument("--default-noise", type=_noise_setting, default=None, metavar="SETTING",
                       help="DeP/DDeP's noise setting in the label-efficiency table, the "
                            "claims and as the ablations' baseline, named as in the weights' "
                            "file names: s0.2, sU0.1-0.4_scaled_x_cond (default: the setting "
                            "with the most results)")
        p.set_defaults(func=func)
    p = subparsers.add_parser("readme", help="generated blocks of README.md and docs/*.md <- "
                                             "results/tables/*.md")
    p.add_argument("--readme", nargs="+", type=Path, default=None, metavar="FILE",
                   help="the files to fill (default: README.md and docs/*.md under --root)")
    p.add_argument("--root", default=".", help="folder the blocks' paths are relative to")
    p.set_defaults(func=readme_main)
