"""Which of mmsegmentation's model families ddep runs: the model check (ddep/model_check.py: one
training step of every stage at every crop, as `ddep check` and Snakemake's start run it) over
one config of every family that the installed mmseg ships (its `.mim/configs/<family>/`), at the
built-in crops (config/smoke.yaml: fine-tune and DeP 64x128, DDeP 64x64 images, the stand-in)
and, time allowing, at the paper's (config/paper.yaml: fine-tune, DeP and DDeP at 512x1024,
480x480 and 512x512). Writes a CSV, one row per family and crop set, its Markdown table (.md)
and the summary alone (_summary.md); `--markdown` rewrites both from the CSV.

    python benchmarks/model_compat.py --csv benchmarks/model_compat.csv --paper-budget 1200

One process, one thread. A family's config is the first of its files (sorted) whose name has the
earliest of SMALL's tokens (its smallest variant), else its first file.
"""
from __future__ import annotations

import argparse
import csv
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Tokens of small variants, the most preferred first (a family's cheapest config to check).
SMALL = ("r18", "mit-b0", "mscan-t", "-t_", "tiny", "hr18s", "s12", "-s_", "vit-s", "small",
         "mobilenet", "r50", "vit-b")
# Not model families: dataset and pretraining folders of mmseg's configs.
NOT_MODELS = ("_base_", "dsdl", "mae")


def family_configs(mmseg_configs: Path) -> dict[str, str]:
    """family -> ``mmseg::family/file.py``, one per family."""
    chosen = {}
    for folder in sorted(p for p in mmseg_configs.iterdir() if p.is_dir()):
        if folder.name in NOT_MODELS or folder.name.startswith("__"):
            continue
        files = sorted(f.name for f in folder.glob("*.py"))
        if not files:
            continue
        pick = next((f for token in SMALL for f in files if token in f), files[0])
        chosen[folder.name] = f"mmseg::{folder.name}/{pick}"
    return chosen


class Timeout(BaseException):  # not an Exception: the check must not take it for a failure
    pass


def _alarm(signum, frame):
    raise Timeout()


def reason_kind(line: str) -> str:
    """The refusal's reason, as the table groups them."""
    kinds = (("a list of decode heads", "cascade of decode heads"),
             ("cannot become a noise head", "head without a `conv_seg` projection (query-based or mask heads)"),
             ("not a per-pixel head", "head without a `conv_seg` projection (query-based or mask heads)"),
             ("takes only the input size", "backbone fixed to one input size (DDeP's crop differs)"),
             ("fixed", "fixed pooling kernel larger than the crop's feature map"),
             ("boundary labels", "needs boundary labels (GenerateEdge)"),
             ("needs the package", "needs a package that is not installed"),
             ("not an encoder-decoder", "not an encoder-decoder segmentor"),
             ("no decode_head", "not an encoder-decoder segmentor"),
             ("BatchNorm layer sees a 1x1", "BatchNorm on a 1x1 map at batch 1"),
             ("out of memory", "out of memory"))
    for needle, kind in kinds:
        if needle in line:
            return kind
    return "other: " + line.split("fails: ")[-1][:120]


def check_one(config: dict, model, timeout: int) -> tuple[str, str, float, int]:
    """(result, line, seconds, steps) of one model on one sweep: ok, refused, or timeout."""
    from ddep.configs import segmentor_cfg
    from ddep.model_check import check_models
    start = time.time()
    try:
        segmentor_cfg(model, 2, (64, 64))  # the config checks preflight makes first
    except ValueError as e:
        return "refused", str(e).splitlines()[0], time.time() - start, 0
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        result = check_models(config, [model])
    except Timeout:
        return "timeout", f"no result within {timeout} s", time.time() - start, 0
    except Exception as e:  # noqa: BLE001  (a crash of the check itself is a row too)
        return "error", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}", time.time() - start, 0
    finally:
        signal.alarm(0)
    line = result.refused.get(model.name, "")
    if not line and not result.steps:
        return "error", "the sweep planned no step for it", result.seconds, 0
    return ("refused" if line else "ok"), line, result.seconds, result.steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--families", nargs="*", help="only these (default: all)")
    ap.add_argument("--builtin-timeout", type=int, default=300, help="seconds per model, built-in crops")
    ap.add_argument("--paper-budget", type=int, default=0,
                    help="seconds for the paper's crops, over all families (0: skip them)")
    ap.add_argument("--paper-timeout", type=int, default=600, help="seconds per model, paper crops")
    ap.add_argument("--markdown", action="store_true",
                    help="rewrite the table and summary (.md, _summary.md) of --csv and stop")
    ap.add_argument("--cpu", default="AMD EPYC", help="with --markdown: the CPU it ran on")
    args = ap.parse_args()
    if args.markdown:
        with args.csv.open() as f:
            write_markdown(args.csv, list(csv.DictReader(f)), args.cpu)
        return

    import mmseg
    import torch
    from mmseg.utils import register_all_modules

    import ddep.models  # noqa: F401
    from ddep.model_check import CACHE_ENV, cpu_model
    from ddep.sweep import Model
    from ddep.sweep_config import load_config
    torch.set_num_threads(1)
    register_all_modules(init_default_scope=True)
    os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="ddep-compat-")  # every step measured
    families = family_configs(Path(mmseg.__file__).parent / ".mim" / "configs")
    if args.families:
        families = {k: v for k, v in families.items() if k in args.families}
    sweeps = {"built-in": load_config([str(REPO / "config/smoke.yaml")]),
              "paper": load_config([str(REPO / "config/paper.yaml")])}
    for cfg in sweeps.values():
        cfg["ablations"] = []
    rows, begun = [], time.time()
    print(f"{len(families)} families, mmseg {mmseg.__version__}, torch {torch.__version__}, "
          f"{cpu_model()}, 1 thread", flush=True)
    for crops in ("built-in", "paper"):
        crop_start = time.time()
        for family, source in families.items():
            if crops == "paper":
                if not args.paper_budget:
                    break
                if time.time() - crop_start > args.paper_budget:
                    rows.append(dict(family=family, config=source, crops=crops, result="not run",
                                     line=f"the paper crops' budget of {args.paper_budget} s was spent",
                                     seconds="", steps=0))
                    continue
                built = next(r for r in rows if r["family"] == family and r["crops"] == "built-in")
                if built["result"] == "refused" and "fails:" not in built["line"]:
                    continue  # refused by its config: no crop changes that
            model = Model(source, family.replace("_", "-"))
            cfg = dict(sweeps[crops], models=[{"name": model.name, "config": source}])
            timeout = args.builtin_timeout if crops == "built-in" else args.paper_timeout
            result, line, seconds, steps = check_one(cfg, model, timeout)
            rows.append(dict(family=family, config=source, crops=crops, result=result, line=line,
                             seconds=round(seconds, 1), steps=steps))
            print(f"{crops:8s} {family:14s} {result:8s} {seconds:7.1f} s  {line}", flush=True)
            write_csv(args.csv, rows)  # after every row: a stopped run keeps what it measured
            write_markdown(args.csv, rows, cpu_model())
    print(f"\n{len(families)} families in {time.time() - begun:.0f} s ({cpu_model()}, 1 thread)")
    print(markdown(rows, cpu_model()))


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["family", "config", "crops", "result", "seconds", "steps", "line"])
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def write_markdown(csv_path: Path, rows: list[dict], cpu: str) -> None:
    """The table (docs/models.md's block) and its summary alone (the README's) beside the CSV."""
    from ddep.io import atomic_write_text
    atomic_write_text(csv_path.with_suffix(".md"), markdown(rows, cpu) + "\n")
    atomic_write_text(csv_path.with_name(csv_path.stem + "_summary.md"), summary(rows, cpu) + "\n")


def summary(rows: list[dict], cpu: str) -> str:
    """Families tried, how many run, the refusals by reason, the time."""
    lines = []
    for crops in ("built-in", "paper"):
        done = [r for r in rows if r["crops"] == crops and r["result"] != "not run"]
        if not done:
            continue
        ok = [r for r in done if r["result"] == "ok"]
        reasons: dict[str, int] = {}
        for r in done:
            if r["result"] == "refused":
                kind = reason_kind(r["line"])
                reasons[kind] = reasons.get(kind, 0) + 1
        other = [r for r in done if r["result"] not in ("ok", "refused")]
        seconds = sum(float(r["seconds"] or 0) for r in done)
        why = "; ".join(f"{n} {kind}" for kind, n in sorted(reasons.items(), key=lambda x: -x[1]))
        skipped = len([r for r in rows if r["crops"] == crops and r["result"] == "not run"])
        lines.append(f"- **{crops} crops**: {len(done)} families tried, **{len(ok)} run** every "
                     f"stage, {sum(reasons.values())} refused before any job ({why})"
                     + (f", {len(other)} without a result ({', '.join(r['family'] + ': ' + r['result'] for r in other)})" if other else "")
                     + (f", {skipped} not run (time budget)" if skipped else "")
                     + f"; {seconds / 60:.1f} min of checking on {cpu}, one thread.")
    return "\n".join(lines)


def markdown(rows: list[dict], cpu: str = "AMD EPYC") -> str:
    """The summary, then one line per family: its config, and at each crop set ok / the reason
    it is refused."""
    return summary(rows, cpu) + "\n\n" + table(rows)


def table(rows: list[dict]) -> str:
    by = {}
    for r in rows:
        by.setdefault(r["family"], {"config": r["config"]})[r["crops"]] = r
    out = ["| family | config | built-in crops | paper crops |", "|---|---|---|---|"]
    for family, r in by.items():
        cells = []
        for crops in ("built-in", "paper"):
            x = r.get(crops)
            if x is None:
                cells.append("")
            elif x["result"] == "ok":
                cells.append(f"runs ({x['steps']} steps, {x['seconds']} s)")
            elif x["result"] == "refused":
                cells.append(f"refused: {reason_kind(x['line'])}")
            else:
                cells.append(f"{x['result']}: {x['line'][:80]}")
        out.append(f"| {family} | `{r['config'].removeprefix('mmseg::')}` | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
