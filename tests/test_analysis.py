"""Fast tests of ddep.analysis on synthetic per-run JSONs (no training, no GPU)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from ddep.analysis.aggregate import (
    load_runs,
    paired_differences,
    read_csv,
    summarise,
)
from ddep.analysis.common import minimal_detectable_effect, t_critical
from ddep.analysis.results import write_results
from ddep.cli import main
from ddep.run_file import RunFileError
from ddep.sweep import NoiseSetting

DEFAULT = NoiseSetting("0.2")

T2 = 4.302652729749  # t_{0.975, 2}

# mIoU per (arm, sigma, label_fraction) for seeds 0, 1, 2. DDeP at sigma 0.2 is best everywhere.
MIOU = {
    ("none", "-", "1/30"): [30.0, 31.0, 35.0],
    ("none", "-", "1/4"): [50.0, 52.0, 51.0],
    ("21k", "-", "1/30"): [40.0, 42.0, 44.0],
    ("21k", "-", "1/4"): [60.0, 61.0, 62.0],
    ("dep", "0.2", "1/30"): [33.0, 30.0, 36.0],
    ("dep", "0.2", "1/4"): [55.0, 56.0, 57.0],
    ("dep", "0.05", "1/30"): [31.0, 32.0, 33.0],
    ("dep", "U(0.1,0.3)", "1/30"): [34.0, 34.0, 34.0],
    ("ddep", "0.2", "1/30"): [45.0, 43.0, 48.0],
    ("ddep", "0.2", "1/4"): [65.0, 66.0, 67.0],
    ("ddep", "0.05", "1/30"): [41.0, 42.0, 43.0],
    ("ddep", "U(0.1,0.3)", "1/30"): [44.0, 44.0, 44.0],
}
N_LABELLED = {"1/30": 10, "1/4": 75}


def run_record(arm: str, sigma: str, lf: str, seed: int, miou: float, **extra) -> dict:
    den = arm in ("dep", "ddep")
    rec = {
        "dataset": "toy", "label_fraction": lf, "n_labelled": N_LABELLED[lf], "arm": arm,
        "sigma": sigma, "formulation": "unscaled" if den else "-", "target": "eps" if den else "-",
        "seed": seed, "model": "transunet_tiny", "mIoU": miou, "aAcc": 80.0 + seed, "mAcc": 50.0,
        "per_class_iou": {"sky": miou + 10, "road": miou - 10},
        "iterations": 300, "wall_time_s": 1.5, "config_hash": "ab12cd34", "git_commit": "abc123",
        "versions": {"torch": "2.14.1"},
    }
    rec.update(extra)
    return rec


def write_json(path: Path, rec: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


@pytest.fixture()
def run_files(tmp_path: Path) -> list[Path]:
    """One JSON per run, at varying depths under tmp_path/runs."""
    files = []
    for (arm, sigma, lf), vals in MIOU.items():
        for seed, v in enumerate(vals):
            sub = tmp_path / "runs" / arm / lf.replace("/", "_") / (sigma if seed else "")
            name = f"{sigma.replace('(', '').replace(')', '').replace(',', '-')}_s{seed}.json"
            files.append(write_json(sub / name, run_record(arm, sigma, lf, seed, v)))
    return files


# --- statistics ---------------------------------------------------------------------------


def test_t_critical_matches_tables() -> None:
    # Two-sided 95% values from standard t tables.
    for df, want in [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (29, 2.045),
                     (120, 1.980)]:
        assert t_critical(df) == pytest.approx(want, abs=5e-4)
    assert t_critical(2) == pytest.approx(T2, abs=1e-9)
    assert t_critical(10**6) == pytest.approx(1.959966, abs=1e-5)
    assert math.isnan(t_critical(0))


# --- loading ------------------------------------------------------------------------------


def test_runs_before_the_models_axis_name_their_preset(tmp_path: Path) -> None:
    """A run JSON written before the models axis has `preset`, no `model`: its model is that
    TransUNet, and it pairs with a run of the same model written after."""
    old = {k: v for k, v in run_record("none", "-", "1/4", 0, 40.0).items() if k != "model"}
    new = run_record("ddep", "0.2", "1/4", 0, 45.0)
    for name, rec in (("old", dict(old, preset="tiny")), ("new", new)):
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    runs = load_runs(sorted(tmp_path.glob("*.json")))
    assert list(runs["model"]) == ["transunet_tiny", "transunet_tiny"]


def test_load_runs_tidy_rows(run_files: list[Path]) -> None:
    runs = load_runs(run_files)
    assert len(runs) == sum(len(v) for v in MIOU.values()) == 36
    assert list(runs.columns[:10]) == ["dataset", "model", "label_fraction", "n_labelled", "arm",
                                       "sigma", "formulation", "target", "noise_conditioning", "seed"]
    assert set(runs["model"]) == {"transunet_tiny"}
    # a run written without the field is unconditioned; arms without pretraining have none
    assert set(runs.loc[runs.arm.isin(["dep", "ddep"]), "noise_conditioning"]) == {"off"}
    assert set(runs.loc[runs.arm.isin(["none", "21k"]), "noise_conditioning"]) == {"-"}
    assert {"mIoU", "aAcc", "mAcc", "iou_sky", "iou_road", "json_path", "version_torch"} <= set(
        runs.columns)
    # Paper order: arms none, 21k, dep, ddep.
    assert list(dict.fromkeys(runs["arm"])) == ["none", "21k", "dep", "ddep"]
    row = runs[(runs.arm == "ddep") & (runs.sigma == "0.2") & (runs.label_fraction == "1/30")
               & (runs.seed == 2)].iloc[0]
    assert row["mIoU"] == 48.0 and row["iou_sky"] == 58.0
    assert Path(row["json_path"]).is_file()


def test_malformed_json_names_the_file(tmp_path: Path, run_files: list[Path]) -> None:
    bad = tmp_path / "runs" / "deep" / "bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"dataset": "toy", "mIoU": ')  # truncated, as from a killed job
    with pytest.raises(RunFileError, match="bad.json"):
        load_runs([*run_files, bad])
    no_miou = run_record("none", "-", "1/30", 7, 1.0)
    del no_miou["mIoU"]
    path = write_json(tmp_path / "no_miou.json", no_miou)
    with pytest.raises(RunFileError, match=r"no_miou\.json.*mIoU"):
        load_runs([path])
    frac = write_json(tmp_path / "pct.json", run_record("none", "-", "1/30", 8, 140.0))
    with pytest.raises(RunFileError, match=r"pct\.json"):
        load_runs([frac])


def test_duplicate_run_is_an_error(tmp_path: Path) -> None:
    a = write_json(tmp_path / "a.json", run_record("none", "-", "1/30", 0, 30.0))
    b = write_json(tmp_path / "sub" / "b.json", run_record("none", "-", "1/30", 0, 31.0))
    with pytest.raises(ValueError, match="duplicate"):
        load_runs([a, b])


# --- summary and paired differences -------------------------------------------------------


def test_summary_mean_std_ci(run_files: list[Path]) -> None:
    summary = summarise(load_runs(run_files))
    assert len(summary) == len(MIOU)
    cell = summary[(summary.arm == "21k") & (summary.label_fraction == "1/30")].iloc[0]
    # seeds [40, 42, 44]: mean 42, sample std 2, CI half-width t_{0.975,2} * 2 / sqrt(3)
    assert cell["n"] == 3
    assert cell["mIoU_mean"] == pytest.approx(42.0)
    assert cell["mIoU_std"] == pytest.approx(2.0)
    assert cell["mIoU_ci95"] == pytest.approx(2 * T2 / math.sqrt(3))
    assert cell["mIoU_ci_low"] == pytest.approx(42.0 - 2 * T2 / math.sqrt(3))
    assert cell["aAcc_mean"] == pytest.approx(81.0)
    assert cell["seeds"] == "0;1;2"
    assert cell["sigma"] == "-" and cell["n_labelled"] == 10


def test_single_seed_has_no_interval(tmp_path: Path) -> None:
    runs = load_runs([write_json(tmp_path / "a.json", run_record("none", "-", "1/30", 0, 30.0))])
    cell = summarise(runs).iloc[0]
    assert cell["n"] == 1 and cell["mIoU_mean"] == 30.0
    assert math.isnan(cell["mIoU_std"]) and math.isnan(cell["mIoU_ci95"])


def test_paired_differences(run_files: list[Path]) -> None:
    paired = paired_differences(load_runs(run_files))  # no default setting: no ablation rows
    assert set(paired["comparison"]) == {"DDeP - 21K", "DeP - none"}
    # One row per (sigma setting, fraction) of each denoising arm: 4 settings each.
    assert len(paired) == 8
    row = paired[(paired.comparison == "DDeP - 21K") & (paired.sigma == "0.2")
                 & (paired.label_fraction == "1/30")].iloc[0]
    diffs = [45 - 40, 43 - 42, 48 - 44]  # matched by seed
    sd = statistics.stdev(diffs)
    assert row["n_pairs"] == 3 and row["n_positive"] == 3
    assert row["mean_diff"] == pytest.approx(statistics.mean(diffs))
    assert row["std_diff"] == pytest.approx(sd)
    assert row["ci95"] == pytest.approx(T2 * sd / math.sqrt(3))
    dep = paired[(paired.comparison == "DeP - none") & (paired.sigma == "0.2")
                 & (paired.label_fraction == "1/30")].iloc[0]
    assert dep["mean_diff"] == pytest.approx(1.0)  # diffs [3, -1, 1]
    assert dep["n_positive"] == 2


def test_paired_ablations_are_each_setting_minus_the_default_of_the_same_arm(
        run_files: list[Path]) -> None:
    paired = paired_differences(load_runs(run_files), DEFAULT)
    ablations = paired[~paired.comparison.isin(["DDeP - 21K", "DeP - none"])]
    assert sorted(ablations.comparison) == [
        "ddep_s0.05 - ddep_s0.2", "ddep_sU0.1-0.3 - ddep_s0.2",
        "dep_s0.05 - dep_s0.2", "dep_sU0.1-0.3 - dep_s0.2"]
    row = ablations[ablations.comparison == "ddep_s0.05 - ddep_s0.2"].iloc[0]
    assert (row["arm"], row["baseline"], row["sigma"], row["label_fraction"]) == (
        "ddep", "ddep_s0.2", "0.05", "1/30")
    assert row["mean_diff"] == pytest.approx(statistics.mean([41 - 45, 42 - 43, 43 - 48]))
    assert row["n_pairs"] == 3 and row["n_positive"] == 0


def test_paired_uses_only_matching_seeds(tmp_path: Path) -> None:
    files = [write_json(tmp_path / f"b{s}.json", run_record("21k", "-", "1/30", s, 40.0 + s))
             for s in (0, 1)]
    files += [write_json(tmp_path / f"d{s}.json", run_record("ddep", "0.2", "1/30", s, 50.0))
              for s in (1, 2)]
    paired = paired_differences(load_runs(files))
    assert len(paired) == 1
    assert paired.iloc[0]["n_pairs"] == 1 and paired.iloc[0]["mean_diff"] == pytest.approx(9.0)


# --- writing -------------------------------------------------------------


def test_write_results_atomically(tmp_path: Path, run_files: list[Path]) -> None:
    out = tmp_path / "results"
    text = write_results(run_files, out, default_noise=DEFAULT, quiet=True)
    for name in ("runs.csv", "summary.csv", "paired.csv", "claims.csv"):
        assert (out / name).is_file(), name
    assert len(read_csv(out / "runs.csv")) == 36
    assert "aggregated 36 run(s) into 12 cell(s)" in text  # one per MIOU entry
    summary = read_csv(out / "summary.csv")
    assert summary.loc[summary.arm == "none", "sigma"].eq("-").all()  # "-" is not read as NaN
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temp files
    # Permissions follow the umask like a plain open(), not mkstemp's 0600.
    from ddep.io import _umask
    assert (out / "summary.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()


@pytest.mark.parametrize("top1, ddep_loss, marks", [
    (0.142, 0.668, ["21k starts from a supervised stand-in that did not learn (held-out top-1 0.142 < 0.5)",
                    "ddep starts from a supervised stand-in that did not learn"]),
    (0.635, 0.982, ["ddep starts from a ddep pretraining that did not learn (held-out loss 0.982, zero prediction "
                    "0.999)"]),
    (0.635, 0.668, [])])
def test_arms_from_a_pretraining_that_did_not_learn_are_marked(tmp_path: Path, top1: float, ddep_loss: float,
                                                              marks: list[str]) -> None:
    """21K starts from the stand-in's weights, DDeP from a decoder pretrained on top of them: each is marked when
    what it starts from did not learn (stand-in top-1 under 0.5, a denoiser's held-out loss not 5% below zero
    prediction); DeP (learnt) and random init never are."""
    weights = tmp_path / "resources/weights/toy/transunet_tiny"
    denoiser = {"stage": "denoise", "dataset": "toy", "sigma": "0.2", "model": "transunet_tiny", "iterations": 200,
                "final_loss": 0.9, "wall_time_s": 15.0, "heldout_zero_loss": 0.999, "heldout_images": 480}
    pretrainings = [
        write_json(weights / "supervised.json", {"stage": "supervised", "model": "transunet_tiny", "accuracy": top1,
                                                 "chance": 1 / 24, "source_classes": 24, "iterations": 200,
                                                 "wall_time_s": 85.0}),
        write_json(weights / "ddep_s0.2.json", dict(denoiser, arm="ddep", heldout_loss=ddep_loss,
                                                    encoder_weights=str(weights / "supervised.safetensors"))),
        write_json(weights / "dep_s0.2.json", dict(denoiser, arm="dep", heldout_loss=0.343))]
    starts = {"none": None, "21k": weights / "supervised.safetensors", "dep": weights / "dep_s0.2.pth",
              "ddep": weights / "ddep_s0.2.pth"}
    runs = [write_json(tmp_path / "runs" / f"{arm}_{seed}.json",
                       run_record(arm, "0.2" if arm in ("dep", "ddep") else "-", "1/30", seed, 40.0 + seed + i,
                                  pretrained=None if start is None else str(start)))
            for i, (arm, start) in enumerate(starts.items()) for seed in range(3)]
    out = tmp_path / "results"
    text = write_results(runs, out, default_noise=DEFAULT, quiet=True, pretraining_paths=pretrainings)
    claims, table = (out / "tables/claims.md").read_text(), (out / "tables/pretrainings.md").read_text()
    assert ("**Marked:**" in claims) is bool(marks) and ("marked: toy, transunet_tiny" in text) is bool(marks)
    assert all(m in claims for m in marks) and "dep starts" not in claims.replace("ddep starts", "")
    assert table.count("**did not learn**") == (1 if marks else 0)  # the one pretraining that did not learn


# --- tables -------------------------------------------------------------------------------


def test_tables_bold_best_and_order(tmp_path: Path, run_files: list[Path]) -> None:
    out = tmp_path / "results"
    write_results(run_files, out, default_noise=DEFAULT, quiet=True)
    tables = out / "tables"
    md = (tables / "toy_label_efficiency.md").read_text()
    tex = (tables / "toy_label_efficiency.tex").read_text()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines()
            if line.startswith("| ")]
    assert rows[0] == ["", "1/30 (10)", "1/4 (75)"]  # numeric order, not text order
    assert [r[0] for r in rows[1:]] == ["Random init", "Supervised (21K)", "DeP", "DDeP"]
    ci = 2 * T2 / math.sqrt(3)
    assert rows[2][1] == f"42.0 ± {ci:.1f}"
    # DDeP at sigma 0.2 is best in both columns: bold in Markdown and LaTeX.
    assert rows[4][1].startswith("**45.3 ± ") and rows[4][2].startswith("**66.0 ± ")
    assert sum(c.startswith("**") for r in rows for c in r) == 2
    assert r"\textbf{45.3 $\pm$" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"Supervised (21K) & 42.0 $\pm$" in tex and r"\caption{toy. mIoU (\%)" in tex
    # Only the default sigma appears in the label-efficiency table (DDeP 0.05 would be 42.0).
    assert sum(r[0] == "DDeP" for r in rows) == 1

    noise = (tables / "toy_noise.md").read_text()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in noise.splitlines()
            if line.startswith("| ") and not line.startswith("| arm")]
    # only 1/30 is ablated; per arm, fixed sigmas ascending, then intervals
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (arm, "1/30 (10)", sigma) for arm in ("DeP", "DDeP") for sigma in ("0.05", "0.2", "U(0.1,0.3)")]
    by_setting = {(r[0], r[2]): r for r in rows}
    assert by_setting[("DDeP", "0.2")][-1] == "default"
    diffs = [41 - 45, 42 - 43, 43 - 48]
    half = T2 * statistics.stdev(diffs) / math.sqrt(3)
    mean = statistics.mean(diffs)
    assert by_setting[("DDeP", "0.05")][-1] == f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
    assert by_setting[("DDeP", "U(0.1,0.3)")][6:8] == ["44.0 ± 0.0", "3"]  # equal seeds: CI 0
    tex = (tables / "toy_noise.tex").read_text()
    assert r"\toprule" in tex and r"$\pm$" in tex and "U(0.1,0.3)" in tex


# --- figures ------------------------------------------------------------------------------


def test_figures_png_pdf(tmp_path: Path, run_files: list[Path]) -> None:
    from ddep.analysis.figures import write_figures

    results, figs = tmp_path / "results", tmp_path / "figures"
    write_results(run_files, results, quiet=True)
    files, notes = write_figures(results, figs, default=DEFAULT, quiet=True)
    assert not notes
    for kind in ("label_efficiency", "noise", "claims"):
        png, pdf = figs / f"toy_{kind}.png", figs / f"toy_{kind}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert len(files) == 6


def test_figures_draw_the_summary(tmp_path: Path, run_files: list[Path]) -> None:
    from ddep.analysis.figures import label_efficiency_figure, noise_figure

    write_results(run_files, tmp_path, quiet=True)
    summary = read_csv(tmp_path / "summary.csv")
    bars = label_efficiency_figure(summary, "toy", default=DEFAULT).axes[0].patches
    # 4 arms x 2 fractions, arm by arm: none, 21K, DeP, DDeP (DeP/DDeP at sigma 0.2)
    assert [round(b.get_height(), 2) for b in bars] == [32.0, 51.0, 42.0, 61.0, 33.0, 56.0, 45.33, 66.0]
    axes = [ax for ax in noise_figure(summary, "toy").axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["label fraction 1/30 (10)"]  # 1/4 is not ablated
    lines = {tuple(round(y, 2) for y in line.get_ydata()) for line in axes[0].get_lines()}
    assert (42.0, 45.33) in lines and (32.0, 33.0) in lines  # DDeP and DeP over fixed sigma
    assert (44.0,) in lines and (34.0,) in lines  # the U(0.1,0.3) markers
    assert (42.0, 42.0) in lines and (32.0, 32.0) in lines  # 21K and random init as references


def test_noise_overview_has_one_panel_per_ablated_dataset(tmp_path: Path, run_files: list[Path]) -> None:
    """The paper's noise figure: a second ablated dataset adds a panel beside the first, drawn
    from its own cells; with one ablated dataset there is no overview (its own figure says it)."""
    from ddep.analysis.figures import noise_overview_figure, write_figures

    write_results(run_files, tmp_path / "one", quiet=True)
    assert noise_overview_figure(read_csv(tmp_path / "one" / "summary.csv")) is None
    other = [write_json(tmp_path / "runs2" / f"{arm}{sigma}_{seed}.json",
                        run_record(arm, sigma, "1/30", seed, miou + 10 * (sigma == "0.05"), dataset="wide"))
             for (arm, sigma, lf), vals in MIOU.items() if lf == "1/30" and arm in ("dep", "none")
             for seed, miou in enumerate(vals)]
    write_results(run_files + other, tmp_path / "two", quiet=True)
    fig = noise_overview_figure(read_csv(tmp_path / "two" / "summary.csv"))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["toy, label fraction 1/30 (10)", "wide, label fraction 1/30 (10)"]
    wide = {tuple(round(y, 2) for y in line.get_ydata()) for line in axes[1].get_lines()}
    assert (42.0, 33.0) in wide and (42.0, 45.33) not in wide  # its DeP (0.05: +10), no DDeP
    files, _ = write_figures(tmp_path / "two", tmp_path / "figs", quiet=True)
    assert {p.name for p in files} >= {"noise.png", "noise.pdf", "toy_noise.png", "wide_noise.png"}


def test_figures_skip_without_denoising_data(tmp_path: Path) -> None:
    from ddep.analysis.figures import write_figures

    files = [write_json(tmp_path / f"r{s}.json", run_record("none", "-", "1/30", s, 30.0 + s))
             for s in range(2)]
    write_results(files, tmp_path / "results", quiet=True)
    written, notes = write_figures(tmp_path / "results", tmp_path / "figs", quiet=True)
    # no noise ablation, no noise figure; no claims, a claims figure that says so
    assert [p.name for p in written] == ["toy_label_efficiency.png", "toy_label_efficiency.pdf",
                                         "toy_claims.png", "toy_claims.pdf"]
    assert notes == []  # nothing was skipped


def test_figures_need_claims_csv_with_its_fragile_column(tmp_path: Path, run_files: list[Path]) -> None:
    from ddep.analysis.figures import write_figures

    results = tmp_path / "results"
    write_results(run_files, results, default_noise=DEFAULT, quiet=True)
    claims = read_csv(results / "claims.csv")
    claims.drop(columns="fragile").to_csv(results / "claims.csv", index=False)  # an older ddep's
    with pytest.raises(ValueError, match="no 'fragile' column.*aggregate step again"):
        write_figures(results, tmp_path / "figs", quiet=True)
    (results / "claims.csv").unlink()
    with pytest.raises(FileNotFoundError, match="claims.csv: not found"):
        write_figures(results, tmp_path / "figs", quiet=True)


# --- command line -------------------------------------------------------------------------


def test_aggregate_command_writes_the_csvs_and_raises_for_bad_input(tmp_path: Path, run_files: list[Path]) -> None:
    from ddep.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["aggregate", "--runs", *map(str, run_files[:3]),
                              "--out", str(tmp_path / "r")])
    assert not args.func(args) and (tmp_path / "r" / "summary.csv").is_file()
    # Bad input raises ValueError, which the project CLI maps to its usage exit code.
    args = parser.parse_args(["aggregate", "--runs-glob", str(tmp_path / "none" / "*.json")])
    with pytest.raises(ValueError, match="no run files"):
        args.func(args)


def test_cli_aggregate_and_figures(tmp_path: Path, run_files: list[Path], capsys) -> None:
    results = tmp_path / "results"
    rc = main(["aggregate", "--runs-glob", str(tmp_path / "runs" / "**" / "*.json"),
               "--out", str(results), "--default-noise", "s0.2"])
    assert rc == 0
    assert "aggregated 36 run(s)" in capsys.readouterr().out
    assert main(["figures", "--results", str(results), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "toy_noise.png").is_file()
    assert main(["aggregate", "--runs-glob", str(tmp_path / "nothing" / "*.json"),
                 "--out", str(results)]) == 2  # the usage exit code
    with pytest.raises(SystemExit) as e:
        main(["aggregate", "--runs-glob", str(tmp_path / "runs" / "**" / "*.json"),
              "--default-noise", "0.2"])  # a sigma, not a setting's name
    assert e.value.code == 2
    assert "not a noise-setting name: '0.2' (e.g. s0.2" in capsys.readouterr().err


# --- claims -------------------------------------------------------------------------------

# Per (arm, sigma, label_fraction): mIoU of seeds 0, 1, 2 (fewer: only those seeds ran).
# Built so that each verdict comes out of a known difference; 1/30 is the small fraction,
# 1/4 the large one.
CLAIM_MIOU = {
    ("none", "-", "1/30"): [30.0, 31.0, 35.0],
    ("21k", "-", "1/30"): [40.0, 42.0, 44.0],
    ("dep", "0.2", "1/30"): [36.0, 37.0, 40.0],   # - none: 6, 6, 5; - 21k: -4, -5, -4
    ("ddep", "0.2", "1/30"): [45.0, 40.0, 44.0],  # - 21k: 5, -2, 0 (21k is the best other arm)
    ("ddep", "0.05", "1/30"): [99.0, 99.0, 99.0],  # neither the default nor an interval
    ("dep", "U(0.1,0.3)", "1/30"): [30.0],        # one pair: no interval
    ("ddep", "U(0.1,0.3)", "1/30"): [48.0, 42.0, 46.0],  # 0.2 - U: -3, -2, -2
    ("none", "-", "1/4"): [50.0, 52.0, 51.0],
    ("21k", "-", "1/4"): [60.0, 61.0, 63.0],
    ("dep", "0.2", "1/4"): [55.0, 56.0, 57.0],    # 21k - dep: 5, 5, 6
    ("ddep", "0.2", "1/4"): [65.0, 66.0, 69.0],   # - 21k: 5, 5, 6
}
# (claim_id, label_fraction, comparison) -> verdict, for every row the claims must have.
CLAIM_VERDICTS = {
    ("dep_gt_none", "1/30", "DeP - Random init"): "holds",
    ("dep_gt_none", "1/4", "DeP - Random init"): "holds",  # 5, 4, 6: 5 ± 2.48
    ("dep_gt_21k_small", "1/30", "DeP - Supervised (21K)"): "contradicted",
    ("21k_gt_dep_large", "1/4", "Supervised (21K) - DeP"): "holds",
    ("ddep_gt_21k", "1/30", "DDeP - Supervised (21K)"): "not shown",
    ("ddep_gt_21k", "1/4", "DDeP - Supervised (21K)"): "holds",
    ("ddep_best", "1/30", "DDeP - best of (Random init, Supervised (21K), DeP)"): "not shown",
    ("ddep_best", "1/4", "DDeP - best of (Random init, Supervised (21K), DeP)"): "holds",
    ("fixed_sigma_gt_interval", "1/30", "DeP: sigma 0.2 - U(0.1,0.3)"): "not shown (n < 2)",
    ("fixed_sigma_gt_interval", "1/30", "DDeP: sigma 0.2 - U(0.1,0.3)"): "contradicted",
}


def claim_runs(miou: dict = CLAIM_MIOU, dataset: str = "toy") -> pd.DataFrame:
    runs = pd.DataFrame([run_record(arm, sigma, lf, seed, v, dataset=dataset)
                         for (arm, sigma, lf), vals in miou.items()
                         for seed, v in enumerate(vals)])
    return runs.assign(noise_conditioning=runs["formulation"].map(lambda f: "-" if f == "-" else "off"))


def claim_row(claims: pd.DataFrame, claim_id: str, fraction: str, n_min: int = 0) -> pd.Series:
    """The one row of a claim at a fraction (with at least n_min pairs)."""
    rows = claims[(claims["claim_id"] == claim_id) & (claims["label_fraction"] == fraction)
                  & (claims["n_pairs"] >= n_min)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_claim_verdict_rule() -> None:
    from ddep.analysis.claims import verdict

    assert verdict(3, 0.1, 2.0) == "holds"
    assert verdict(3, -0.1, 2.0) == "not shown"
    assert verdict(3, 0.0, 2.0) == "not shown"  # "above 0" is strict
    assert verdict(3, -2.0, -0.1) == "contradicted"
    assert verdict(1, math.nan, math.nan) == "not shown (n < 2)"
    assert verdict(1, 1.0, 1.0) == "not shown (n < 2)"


def test_fragile_rule_at_the_margin_on_each_side_of_zero() -> None:
    from ddep.analysis.claims import is_fragile

    # Half-width 2 throughout: fragile when the bound nearest 0 is within 1 of 0 (inclusive).
    assert is_fragile(5, 0.99, 4.99) and not is_fragile(5, 1.01, 5.01)  # holds
    assert is_fragile(5, 1.0, 5.0)  # on the margin
    assert is_fragile(5, -4.99, -0.99) and not is_fragile(5, -5.01, -1.01)  # contradicted
    # not shown: the nearest bound is whichever is closer to 0, below or above it
    assert is_fragile(5, -3.01, 0.99) and not is_fragile(5, -2.99, 1.01)
    assert is_fragile(5, -0.99, 3.01) and not is_fragile(5, -1.01, 2.99)
    assert not is_fragile(5, -2.0, 2.0)  # 0 in the middle: a rerun moves no bound across it
    assert is_fragile(5, 0.0, 4.0)  # touching 0
    # Never fragile without an interval.
    assert not is_fragile(1, math.nan, math.nan) and not is_fragile(1, 0.0, 0.0)
    # One claim read on two CPU types, not shown on one and contradicted on the other: both
    # fragile; an interval whose nearest bound is far from 0 is not.
    assert is_fragile(5, -3.2699, 0.6139) and is_fragile(5, -1.82, -0.09)
    assert not is_fragile(5, 3.6824, 9.0056)


def test_claims_rows_and_verdicts() -> None:
    from ddep.analysis.claims import claims_table

    # A second dataset run at one fraction only: neither small nor large.
    solo = {k: v for k, v in CLAIM_MIOU.items() if k[2] == "1/4"}
    runs = pd.concat([claim_runs(), claim_runs(solo, dataset="solo")], ignore_index=True)
    claims = claims_table(runs, DEFAULT)
    toy = claims[claims["dataset"] == "toy"]
    got = {(r.claim_id, r.label_fraction, r.comparison): r.verdict for r in toy.itertuples()}
    assert got == CLAIM_VERDICTS
    # Claims in paper order, then fractions (small to large).
    assert toy["claim_id"].tolist() == [
        "dep_gt_none", "dep_gt_none", "dep_gt_21k_small", "21k_gt_dep_large", "ddep_gt_21k",
        "ddep_gt_21k", "ddep_best", "ddep_best", "fixed_sigma_gt_interval",
        "fixed_sigma_gt_interval"]
    assert set(claims.loc[claims["dataset"] == "solo", "claim_id"]) == {
        "dep_gt_none", "ddep_gt_21k", "ddep_best"}
    assert (toy["sigma"].isin(["0.2", "0.2 vs U(0.1,0.3)"])).all()  # sigma 0.05 is not used
    single = toy[toy["verdict"] == "not shown (n < 2)"].iloc[0]
    assert single["n_pairs"] == 1 and single["mean_diff"] == pytest.approx(36.0 - 30.0)
    assert math.isnan(single["ci_low"]) and math.isnan(single["ci_high"])
    assert not single["fragile"]
    assert list(claims.columns[-2:]) == ["seeds", "fragile"]  # appended: the others keep their place


def test_fragile_claims_in_the_table_and_the_markdown() -> None:
    from ddep.analysis.claims import claims_table, render_claims_markdown

    miou = dict(CLAIM_MIOU)
    miou[("ddep", "0.2", "1/4")] = [62.0, 64.0, 67.0]  # - 21k: 2, 3, 4: holds, bound 0.52 < 2.48 / 2
    claims = claims_table(claim_runs(miou), DEFAULT)
    row = claim_row(claims, "ddep_gt_21k", "1/4")
    half = T2 * 1.0 / math.sqrt(3)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((3 - half, 3 + half))
    assert row["verdict"] == "holds" and row["fragile"]
    # Every other verdict of the synthetic runs is far from 0 for its interval.
    assert claims.loc[claims["fragile"], "claim_id"].tolist() == ["ddep_gt_21k", "ddep_best"]
    md = render_claims_markdown(claims, DEFAULT)
    assert (f"| DDeP > 21K | 1/4 (75) | DDeP - Supervised (21K) | 3 | +3.00 | "
            f"[{3 - half:+.2f}, {3 + half:+.2f}] | {minimal_detectable_effect(1.0, 3):.2f} | "
            f"holds (fragile) |") in md
    assert "| holds |" in md and "| not shown (n < 2) |" in md  # the others as they were
    assert "within half the CI's half-width of 0" in md and "never fragile" in md


def _claims(*rows: tuple) -> pd.DataFrame:
    """A claims table (CLAIM_COLUMNS) of rows (claim_id, label_fraction, ci_low, ci_high)."""
    from ddep.analysis.claims import CLAIM_COLUMNS, is_fragile, verdict

    return pd.DataFrame([{
        "claim_id": cid, "claim": cid, "dataset": "toy", "model": "transunet_tiny", "label_fraction": lf,
        "n_labelled": int(lf), "comparison": "DDeP - Supervised (21K)", "sigma": "0.2",
        "formulation": "unscaled", "target": "eps", "n_pairs": 5, "mean_diff": (lo + hi) / 2,
        "ci_low": lo, "ci_high": hi, "verdict": verdict(5, lo, hi), "seeds": "5;6;7;8;9",
        "fragile": is_fragile(5, lo, hi)} for cid, lf, lo, hi in rows], columns=CLAIM_COLUMNS)


def test_compare_claims_fails_only_robust_flips(tmp_path: Path) -> None:
    from ddep.analysis.claims import compare_claims

    committed = _claims(("same", "5", 1.0, 5.0), ("fragile_flip", "10", -3.27, 0.61),
                        ("robust_flip", "10", 2.0, 6.0), ("gone", "10", 2.0, 6.0))
    fresh = _claims(("same", "5", 1.5, 5.5), ("fragile_flip", "10", -1.82, -0.09),
                    ("robust_flip", "10", -6.0, -2.0), ("new", "5", -1.0, 1.0))
    committed.to_csv(tmp_path / "claims.csv", index=False)  # read back, as the reproduction test does
    both = compare_claims(read_csv(tmp_path / "claims.csv"), fresh)
    assert both["claim_id"].tolist() == ["same", "fragile_flip", "robust_flip", "gone", "new"]
    got = {r.claim_id: (r.verdict_committed, r.verdict_fresh, r.differs, r.robust_flip)
           for r in both.itertuples()}
    assert got == {
        "same": ("holds", "holds", False, False),
        "fragile_flip": ("not shown", "contradicted", True, False),  # fragile in both: allowed
        "robust_flip": ("holds", "contradicted", True, True),
        "gone": ("holds", "absent", True, True),  # a claim missing from one run is a difference
        "new": ("absent", "not shown", True, True)}
    assert both.loc[1, "mean_diff_committed"] == pytest.approx(-1.33)
    # Fragile in one run only is enough: a robust holds against a contradicted near 0.
    assert not compare_claims(committed.iloc[[2]], _claims(("robust_flip", "10", -6.0, -0.5)))[
        "robust_flip"].any()
    with pytest.raises(ValueError, match=r"fresh: \['fragile'\]"):
        compare_claims(committed, fresh.drop(columns="fragile"))


def test_claims_figure_has_a_row_per_claim_and_fraction(tmp_path: Path) -> None:
    from ddep.analysis.claims import claims_table
    from ddep.analysis.figures import claims_figure, claims_figure_rows, save_figure

    claims = claims_table(claim_runs(), DEFAULT)
    rows = claims_figure_rows(claims, "toy")
    assert len(rows) == len(CLAIM_VERDICTS)  # one per claim x fraction (x comparison)
    assert rows["label"].tolist()[:4] == [
        "DeP > random init · 1/30 (10)", "DeP > random init · 1/4 (75)",
        "DeP > 21K at small fractions · 1/30 (10)", "21K > DeP at large fractions · 1/4 (75)"]
    # the sigma claim names its comparison (here two at 1/30)
    assert rows["label"].tolist()[-2:] == [
        "fixed σ beats σ drawn from an interval · 1/30 (10)\nDeP: σ 0.2 - U(0.1,0.3)",
        "fixed σ beats σ drawn from an interval · 1/30 (10)\nDDeP: σ 0.2 - U(0.1,0.3)"]
    assert rows["verdict"].tolist() == claims["verdict"].tolist()
    assert rows["mean_diff"].tolist() == pytest.approx(claims["mean_diff"].tolist())
    assert claims_figure_rows(claims, "toy", model="other").empty
    fig = claims_figure(claims, "toy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == rows["label"].tolist()
    x_min, x_max = ax.get_xlim()
    assert x_min < 0 < x_max and x_min <= claims["ci_low"].min() and x_max >= claims["ci_high"].max()
    # one marker per row at its mean, first row on top
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [line.get_xdata()[0] for line in markers] == pytest.approx(rows["mean_diff"].tolist())
    assert [line.get_ydata()[0] for line in markers] == list(range(len(rows)))
    assert ax.get_ylim()[0] > ax.get_ylim()[1]
    # fragile verdicts (DDeP > 21K and best of the four at 1/4 here) are hollow
    miou = {**CLAIM_MIOU, ("ddep", "0.2", "1/4"): [62.0, 64.0, 67.0]}
    fragile = claims_table(claim_runs(miou), DEFAULT)
    markers = [line for line in claims_figure(fragile, "toy").axes[0].get_lines() if line.get_marker() == "o"]
    assert [line.get_markerfacecolor() == "white" for line in markers] == fragile["fragile"].tolist()
    assert sum(fragile["fragile"]) == 2
    empty = claims_figure(claims.iloc[:0], "toy")  # no claims: says so
    assert "No claim has paired runs." in [t.get_text() for t in empty.axes[0].texts]
    files = save_figure(fig, [str(tmp_path / "toy_claims.png"), str(tmp_path / "toy_claims.pdf")])
    assert all(f.stat().st_size > 1000 for f in files)


def test_claims_ci_matches_scipy_t_interval() -> None:
    import scipy.stats as stats
    from ddep.analysis.claims import claims_table

    claims = claims_table(claim_runs(), DEFAULT)
    for claim_id, diffs in [("dep_gt_21k_small", [-4.0, -5.0, -4.0]),
                            ("ddep_gt_21k", [5.0, -2.0, 0.0]),
                            ("fixed_sigma_gt_interval", [-3.0, -2.0, -2.0])]:
        row = claim_row(claims, claim_id, "1/30", n_min=2)
        mean = statistics.mean(diffs)
        low, high = stats.t.interval(0.95, df=len(diffs) - 1, loc=mean,
                                     scale=statistics.stdev(diffs) / math.sqrt(len(diffs)))
        assert row["n_pairs"] == len(diffs)
        assert row["mean_diff"] == pytest.approx(mean)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)


def test_ddep_best_takes_the_best_other_arm_of_each_seed_where_all_four_ran() -> None:
    from ddep.analysis.claims import claims_table

    miou = dict(CLAIM_MIOU)
    miou[("none", "-", "1/4")] = [64.0, 52.0, 51.0]  # random init beats 21K on seed 0
    miou[("dep", "0.2", "1/4")] = [55.0, 56.0]       # no DeP seed 2
    claims = claims_table(claim_runs(miou), DEFAULT)
    best = claim_row(claims, "ddep_best", "1/4")
    assert best["n_pairs"] == 2 and best["seeds"] == "0;1"
    assert best["mean_diff"] == pytest.approx(((65 - 64) + (66 - 61)) / 2)
    assert claim_row(claims, "ddep_gt_21k", "1/4")["n_pairs"] == 3


def test_claims_without_their_runs_have_no_rows() -> None:
    from ddep.analysis.claims import claims_table, render_claims_markdown

    baselines = claim_runs({k: v for k, v in CLAIM_MIOU.items() if k[0] in ("none", "21k")})
    assert claims_table(baselines, DEFAULT).empty
    assert "No claim has paired runs." in render_claims_markdown(
        claims_table(baselines, None), None)
    # An interval default sigma: there is no fixed sigma to compare with the intervals.
    interval_default = claims_table(claim_runs(), NoiseSetting("U0.1-0.3"))  # the workflow's slug
    assert "fixed_sigma_gt_interval" not in set(interval_default["claim_id"])
    assert (interval_default["sigma"] == "U(0.1,0.3)").all()


def test_write_results_writes_claims_csv_and_markdown(tmp_path: Path) -> None:
    files = [write_json(tmp_path / "runs" / f"{arm}_{sigma}_{lf.replace('/', '_')}_{seed}.json",
                        run_record(arm, sigma, lf, seed, v))
             for (arm, sigma, lf), vals in CLAIM_MIOU.items() for seed, v in enumerate(vals)]
    out = tmp_path / "results"
    text = write_results(files, out, default_noise=DEFAULT, quiet=True)
    claims = read_csv(out / "claims.csv")
    assert len(claims) == len(CLAIM_VERDICTS)
    assert "claims: 10 row(s), 5 holds" in text
    md = (out / "tables" / "claims.md").read_text()
    assert md.startswith("**toy: claims of the paper**")
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| claim | fraction (images) | comparison | n |")
    assert len(rows) == 1 + len(claims)
    half = T2 * statistics.stdev([-4.0, -5.0, -4.0]) / math.sqrt(3)
    mean = -13.0 / 3
    assert (f"| DeP > 21K at small fractions | 1/30 (10) | DeP - Supervised (21K) | 3 | "
            f"{mean:+.2f} | [{mean - half:+.2f}, {mean + half:+.2f}] | "
            f"{minimal_detectable_effect(statistics.stdev([-4.0, -5.0, -4.0]), 3):.2f} | contradicted |") in rows
    assert ("| fixed sigma beats sigma drawn from an interval | 1/30 (10) | "
            "DeP: sigma 0.2 - U(0.1,0.3) | 1 | +6.00 | – | – | not shown (n < 2) |") in rows
    assert claims["mde"].isna().sum() == (claims["n_pairs"] < 2).sum()
    assert "DeP/DDeP at sigma = 0.2" in md and "(n < 2)" in md


def test_readme_blocks_are_filled_from_the_files_they_name(tmp_path):
    from ddep.readme import fill_readme

    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/tables/a.md").write_text("| x |\n|---|\n| 1.5 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated from results/tables/a.md -->\nstale 9.9\n"
                      "<!-- end generated -->\nrest\n")
    assert fill_readme(readme, tmp_path) == ["results/tables/a.md"]
    want = ("intro\n<!-- generated from results/tables/a.md -->\n| x |\n|---|\n| 1.5 |\n"
            "<!-- end generated -->\nrest\n")
    assert readme.read_text() == want
    fill_readme(readme, tmp_path)  # idempotent
    assert readme.read_text() == want
    readme.write_text("<!-- generated from results/tables/missing.md -->\n<!-- end generated -->\n")
    with pytest.raises(FileNotFoundError, match="missing.md, which does not exist"):
        fill_readme(readme, tmp_path)


def test_pretraining_jobs_are_tabulated(tmp_path: Path, run_files: list[Path]) -> None:
    """`ddep aggregate --pretrainings`: the stand-in's held-out top-1 beside chance, the
    denoisers' final losses, and what each learnt from."""
    weights = tmp_path / "weights" / "builtin"
    sup = write_json(weights / "supervised.json", dict(
        stage="supervised", preset="tiny", iterations=1000, wall_time_s=171.3, accuracy=0.2125,
        chance=1 / 24, majority_accuracy=1 / 24, source="data/builtin/source/train",
        source_classes=24))
    den = write_json(weights / "ddep_s0.2.json", dict(
        stage="denoise", arm="ddep", dataset="builtin", sigma="0.2", iterations=1000,
        wall_time_s=88.0, final_loss=0.5123, unlabelled="data/builtin/source/train"))
    out = tmp_path / "results"
    assert main(["aggregate", "--runs", *map(str, run_files), "--out", str(out),
                 "--pretrainings", str(sup), str(den)]) == 0
    table = pd.read_csv(out / "pretrainings.csv")
    assert list(table["arm"]) == ["21k", "ddep"] and list(table["dataset"]) == ["builtin"] * 2
    assert list(table["images"]) == ["data/builtin/source/train"] * 2
    assert table.loc[0, "accuracy"] == pytest.approx(0.2125)
    md = (out / "tables" / "pretrainings.md").read_text()
    assert "held-out top-1 0.212 on 24 classes (chance 0.042)" in md
    assert "final loss 0.512 (sigma 0.2)" in md


def test_ddep_readme_fills_the_blocks_of_readme_and_docs_pages(tmp_path):
    """Blocks that moved from the README into docs/*.md are refilled by plain `ddep readme`."""
    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/tables/a.md").write_text("| fresh |\n")
    (tmp_path / "docs").mkdir()
    block = "<!-- generated from results/tables/a.md -->\nstale\n<!-- end generated -->\n"
    for page in ("README.md", "docs/ablations.md", "docs/plain.md"):
        (tmp_path / page).write_text(f"# {page}\n" + (block if page != "docs/plain.md" else ""))
    assert main(["readme", "--root", str(tmp_path)]) == 0
    for page in ("README.md", "docs/ablations.md"):
        assert "| fresh |" in (tmp_path / page).read_text() and "stale" not in (tmp_path / page).read_text()
    assert (tmp_path / "docs/plain.md").read_text() == "# docs/plain.md\n"


def test_the_repository_pages_name_existing_result_tables():
    """Wherever the README's generated blocks landed, each names a table that exists."""
    from ddep.readme import BLOCK, documents

    repo = Path(__file__).resolve().parents[1]
    named = [(page.name, m.group("path")) for page in documents(repo)
             for m in BLOCK.finditer(page.read_text())]
    assert len(named) >= 3, named
    missing = [(page, path) for page, path in named if not (repo / path).is_file()]
    assert not missing, f"blocks naming missing files: {missing}"


def test_the_committed_stand_in_learnt_the_source_classes() -> None:
    """The committed default run's supervised stand-in (results/pretrainings.csv) classifies the
    held-out source images far above chance: binomial test over config/config.yaml's
    n_source_val images. (tests/test_reproduce.py checks a fresh run's the same way.)"""
    import yaml
    from scipy.stats import binomtest

    repo = Path(__file__).resolve().parents[1]
    table = pd.read_csv(repo / "results/pretrainings.csv")
    row = table[table["stage"] == "supervised"].iloc[0]
    n = yaml.safe_load((repo / "config/config.yaml").read_text())["datasets"]["builtin"]["generate"]["n_source_val"]
    assert binomtest(round(row["accuracy"] * n), n, row["chance"], alternative="greater").pvalue < 1e-6, row


@pytest.mark.parametrize("n, std", [(5, 1.7), (3, 0.4), (10, 2.5)])
def test_minimal_detectable_effect_has_its_power_in_simulation(n: int, std: float) -> None:
    """Independent check of the noncentral-t solution: paired differences drawn with the MDE as
    their true mean are called non-zero by scipy's own one-sample t test 80% of the time, and a
    tenth less effect is detected clearly less often."""
    import numpy as np
    import scipy.stats

    from ddep.analysis.common import minimal_detectable_effect

    mde = minimal_detectable_effect(std, n)
    rng = np.random.default_rng(0)

    def power(effect: float, reps: int = 40_000) -> float:
        draws = rng.normal(effect, std, size=(reps, n))
        return float((scipy.stats.ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05).mean())

    assert power(mde) == pytest.approx(0.8, abs=0.01)
    assert power(0.9 * mde) < 0.77
    # Larger spread, larger MDE; more pairs, smaller MDE.
    assert minimal_detectable_effect(2 * std, n) == pytest.approx(2 * mde)
    assert minimal_detectable_effect(std, n + 5) < mde
    assert math.isnan(minimal_detectable_effect(std, 1)) and minimal_detectable_effect(0.0, n) == 0.0
