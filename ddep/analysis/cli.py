"""Command-line entry points. Each step is an (add_*_args, *_main) pair so the project CLI can
mount it as a subcommand (``add_analysis_commands(subparsers)`` does both)::

    sub = subparsers.add_parser("aggregate"); add_aggregate_args(sub)
    sub.set_defaults(func=aggregate_main)

The *_main functions raise ValueError (RunFileError is one) or FileNotFoundError on bad input,
which ``ddep.cli.main`` turns into its usage exit code; ``main`` here does the same (exit 1).
Standalone: ``python -m ddep.analysis aggregate ...`` / ``python -m ddep.analysis figures ...``.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence

DEFAULT_RUNS_GLOB = "resources/runs/**/*.json"


def add_aggregate_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `aggregate` options to `parser` (and return it)."""
    parser.add_argument("--runs-glob", default=DEFAULT_RUNS_GLOB,
                        help=f"glob of per-run JSON files, ** matches any depth "
                             f"(default: {DEFAULT_RUNS_GLOB!r})")
    parser.add_argument("--runs", nargs="+", default=None, metavar="JSON",
                        help="explicit per-run JSON files (instead of --runs-glob)")
    parser.add_argument("--out", default="results",
                        help="output directory for runs/summary/paired/claims/missing CSVs and tables/ "
                             "(default: results)")
    parser.add_argument("--expected", default=None, metavar="CSV_OR_JSON",
                        help="expected run identities (columns from dataset, label_fraction, "
                             "n_labelled, arm, sigma, formulation, target, preset, seed); "
                             "missing ones are listed and written to missing.csv")
    parser.add_argument("--default-sigma", default=None,
                        help="sigma setting of DeP/DDeP in the label-efficiency table "
                             "(default: the setting with the most results)")
    return parser


def aggregate_main(args: argparse.Namespace) -> int:
    """Run the aggregate step from parsed arguments. Returns 0; raises ValueError (a malformed
    run file, duplicate runs, no run files and no --expected) or FileNotFoundError."""
    from .aggregate import read_expected, write_results

    paths = list(args.runs) if args.runs else sorted(glob.glob(args.runs_glob, recursive=True))
    expected = read_expected(args.expected) if args.expected else None
    if not paths and expected is None:
        # Almost always a wrong glob or working directory; an empty result set would hide it.
        raise ValueError(f"no run files match {args.runs_glob!r}")
    write_results(paths, args.out, expected=expected, default_sigma=args.default_sigma)
    return 0


def add_figures_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `figures` options to `parser` (and return it)."""
    parser.add_argument("--results", default="results",
                        help="directory holding summary.csv (default: results)")
    parser.add_argument("--out", default="figures", help="output directory (default: figures)")
    parser.add_argument("--default-sigma", default=None,
                        help="sigma setting of DeP/DDeP in the label-efficiency figure "
                             "(default: the setting with the most results)")
    return parser


def figures_main(args: argparse.Namespace) -> int:
    """Run the figures step from parsed arguments. Returns 0; raises FileNotFoundError when
    summary.csv is missing. Figures without data are skipped with a message."""
    from .figures import write_figures  # matplotlib import only when figures are wanted

    write_figures(args.results, args.out, default_sigma=args.default_sigma)
    return 0


def readme_main(args: argparse.Namespace) -> int:
    """Rewrite the README's generated blocks from the result tables they name."""
    from .readme import fill_readme

    used = fill_readme(args.readme, args.root)
    print(f"{args.readme}: {len(used)} generated block(s) from {', '.join(used) or 'nothing'}")
    return 0


def add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    """Mount `aggregate`, `figures` and `readme` on a subparsers object (sets ``func``)."""
    p = subparsers.add_parser("aggregate",
                              help="per-run JSONs -> runs/summary/paired/claims CSVs, tables")
    add_aggregate_args(p)
    p.set_defaults(func=aggregate_main)
    p = subparsers.add_parser("figures", help="summary.csv -> PNG/PDF figures")
    add_figures_args(p)
    p.set_defaults(func=figures_main)
    p = subparsers.add_parser("readme", help="README's generated blocks <- results/tables/*.md")
    p.add_argument("--readme", default="README.md")
    p.add_argument("--root", default=".", help="folder the blocks' paths are relative to")
    p.set_defaults(func=readme_main)


def build_parser() -> argparse.ArgumentParser:
    """Parser with the `aggregate` and `figures` subcommands."""
    parser = argparse.ArgumentParser(prog="python -m ddep.analysis",
                                     description="Aggregate DDeP results and draw figures.")
    add_analysis_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m ddep.analysis {aggregate,figures} ...``; exit 1 on bad input."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ddep.analysis {args.command}: error: {exc}", file=sys.stderr)
        return 1
