"""Results of the DDeP benchmark: ``aggregate`` and ``results`` (run JSONs -> CSVs, claims, tables), ``tables``,
``claims``, ``figures`` (from the CSVs); ``ddep aggregate|figures`` call them. The output file names are made
here only; the workflow declares its outputs with these functions (nothing heavy imported: a fast Snakefile)."""

from os import PathLike

CSV_NAMES = ("runs", "summary", "paired", "claims")  # every aggregate's; pretrainings.csv where jobs pretrained
# `ddep compare A B --out DIR` writes these; Welch's test there is at this family-wise level over the shared cells.
COMPARE_CSV_NAMES = ("compare_cells", "compare_claims")
WELCH_ALPHA = 0.01
COMPARISONS = "comparisons"  # the config's own arms against the presets: only where it has some
MARKDOWN_ONLY = ("claims", "pretrainings", COMPARISONS)  # the whole run's tables; {stem}_label_efficiency, {stem}_noise: .tex too


def csv_path(results_dir: str | PathLike, name: str) -> str:
    return f"{results_dir}/{name}.csv"


def table_paths(results_dir: str | PathLike, name: str) -> list[str]:
    return [f"{results_dir}/tables/{name}.{ext}" for ext in (("md",) if name in MARKDOWN_ONLY else ("md", "tex"))]


def figure_paths(figures_dir: str | PathLike, name: str) -> list[str]:
    """name: ``{stem}_label_efficiency``, ``{stem}_noise``, ``{stem}_claims``, ``{stem}_comparisons`` (the
    config's own arms), or noise (every ablated dataset)."""
    return [f"{figures_dir}/{name}.{ext}" for ext in ("png", "pdf")]
