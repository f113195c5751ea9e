"""Result aggregation, the paper's claims, tables and figures for the DDeP benchmark.

Names are imported lazily so that ``ddep.cli`` can mount the subcommands (via
``ddep.analysis.cli``) without importing pandas/matplotlib for every other command.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RunFileError": "aggregate", "load_runs": "aggregate", "summarise": "aggregate",
    "paired_differences": "aggregate", "missing_runs": "aggregate",
    "write_results": "aggregate", "read_csv": "aggregate", "read_expected": "aggregate",
    "write_tables": "tables", "write_figures": "figures",
    "claims_table": "claims", "write_claims": "claims",
    "add_analysis_commands": "cli", "add_aggregate_args": "cli", "aggregate_main": "cli",
    "add_figures_args": "cli", "figures_main": "cli", "main": "cli",
    "t_critical": "common", "ci_halfwidth": "common",
}
__all__ = [
    "RunFileError", "add_aggregate_args", "add_analysis_commands", "add_figures_args",
    "aggregate_main", "ci_halfwidth", "claims_table", "figures_main", "load_runs", "main", "missing_runs",
    "paired_differences", "read_csv", "read_expected", "summarise", "t_critical",
    "write_claims", "write_figures", "write_results", "write_tables",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
