"""Result aggregation, the paper's claims, tables and figures for the DDeP benchmark:
``aggregate`` (per-run JSONs -> CSVs, claims, tables), ``tables``, ``claims``, ``figures``
(from the CSVs only), ``cli`` (the ``ddep aggregate|figures|readme`` subcommands)."""
