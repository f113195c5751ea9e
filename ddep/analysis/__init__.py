"""Results of the DDeP benchmark: ``aggregate`` and ``results`` (run JSONs -> CSVs, claims, tables), ``tables``,
``claims``, ``figures`` (from the CSVs), ``cli`` (``ddep aggregate|figures|readme``). The output file names are made
here only; the workflow declares its outputs with these functions (this module imports nothing: a fast Snakefile)."""

CSV_NAMES = ("runs", "summary", "paired", "claims")
TABLE_FORMATS, FIGURE_FORMATS = ("md", "tex"), ("png", "pdf")


def csv_paths(results_dir: str) -> list[str]:
    return [f"{results_dir}/{name}.csv" for name in CSV_NAMES]


def pretrainings_paths(results_dir: str) -> list[str]:  # the pretraining jobs' table, CSV and MD
    return [f"{results_dir}/pretrainings.csv", f"{results_dir}/tables/pretrainings.md"]


def claims_table_path(results_dir: str) -> str:
    return f"{results_dir}/tables/claims.md"


def table_paths(results_dir: str, stem: str, kind: str) -> list[str]:  # kind: label_efficiency | noise
    return [f"{results_dir}/tables/{stem}_{kind}.{ext}" for ext in TABLE_FORMATS]


def figure_paths(figures_dir: str, stem: str, kind: str) -> list[str]:
    return [f"{figures_dir}/{stem}_{kind}.{ext}" for ext in FIGURE_FORMATS]


def noise_overview_paths(figures_dir: str) -> list[str]:  # every ablated dataset's panels (two or more datasets)
    return [f"{figures_dir}/noise.{ext}" for ext in FIGURE_FORMATS]
