"""The sweep vocabulary: names of noise settings and runs, and the expansion of a config."""
import math
import subprocess
import sys
from fractions import Fraction

import pytest

from ddep.sweep import (
    NoiseSetting,
    Model,
    ablated_cells,
    finetune_jobs,
    fraction_value,
    parse_fraction,
    parse_run_name,
    parse_sigma,
    pretrainings,
    result_stem,
    run_name,
    sigma_label,
    sigma_slug,
    sweep_models,
)


@pytest.mark.parametrize("value, label, slug", [
    (0.2, "0.2", "0.2"), ("0.20", "0.2", "0.2"), ([0.1, 0.4], "U(0.1,0.4)", "U0.1-0.4"),
    ("U0.1-0.4", "U(0.1,0.4)", "U0.1-0.4"), ("U[0.1, 0.4]", "U(0.1,0.4)", "U0.1-0.4"),
    ([0, 1], "U(0,1)", "U0-1"),
])
def test_sigma_labels_and_slugs_agree_whatever_the_spelling(value, label, slug):
    assert sigma_label(value) == label and sigma_slug(value) == slug
    assert sigma_label(slug) == label  # a file name gives back the label


def test_sigma_parsing_keeps_non_settings_apart():
    assert parse_sigma("-") == ("none", ())
    assert parse_sigma("U(a,b)")[0] == "other"
    with pytest.raises(ValueError, match="not a noise level"):
        sigma_slug("-")


@pytest.mark.parametrize("setting, name", [
    (NoiseSetting(0.2), "ddep_s0.2"),
    (NoiseSetting([0.1, 0.4], noise_conditioning=True), "ddep_sU0.1-0.4_cond"),
    (NoiseSetting(0.4, "scaled", "x"), "ddep_s0.4_scaled_x"),
    (NoiseSetting("U(0,1)", "scaled", "x", "on"), "ddep_sU0-1_scaled_x_cond"),
])
def test_a_run_name_is_its_setting_and_parses_back(setting, name):
    assert run_name("ddep", setting) == name
    assert parse_run_name(name) == ("ddep", setting)
    assert run_name("21k", setting) == "21k" and parse_run_name("21k") == ("21k", None)


def test_a_setting_becomes_the_pretraining_jobs_options():
    assert NoiseSetting([0.1, 0.4], "scaled", "x", True).cli_args() == (
        "--sigma 0.1 0.4 --formulation scaled --target x --noise-conditioning")
    assert NoiseSetting(0.2).cli_args() == "--sigma 0.2 --formulation unscaled --target eps"


@pytest.mark.parametrize("bad", ["none_s0.2", "ddep", "ddep_s0.2_cond_cond", "ddep_s0.2_big", "21k_s0.2"])
def test_names_that_are_not_runs_are_refused(bad):
    with pytest.raises(ValueError, match="not a"):
        parse_run_name(bad)


def test_bad_axis_values_are_refused():
    with pytest.raises(ValueError, match="formulation"):
        NoiseSetting(0.2, formulation="vp")
    with pytest.raises(ValueError, match="target"):
        NoiseSetting(0.2, target="v")


CONFIG = dict(
    seeds=[0, 1], arms=["none", "21k", "dep", "ddep"],
    denoising=dict(sigma=0.2, formulation="unscaled", target="eps", noise_conditioning=False),
    datasets=dict(a=dict(fractions=["10", "20"], fraction_seeds={"20": [0]}), b=dict(fractions=["1/8"])),
    ablations=[
        dict(sigma=[0.2, 0.4, [0.1, 0.4]], formulation=["unscaled", "scaled"], arms=["ddep"],
             fractions=["10"], seeds=[0, 1, 2]),
        dict(target=["x"], fractions=["10"]),
        dict(sigma=[[0.1, 0.4]], noise_conditioning=[True], arms=["dep"], fractions=["10"]),
    ],
)


def test_the_sweep_is_the_grid_plus_each_ablation_product_once():
    jobs = finetune_jobs(CONFIG)
    keys = [(j["dataset"], j["label_fraction"], j["run"], j["seed"]) for j in jobs]
    assert len(keys) == len(set(keys))  # a run shared by the grid and an ablation is listed once
    grid = {("a", "10"): 2, ("a", "20"): 1, ("b", "1/8"): 2}
    n_grid = sum(4 * n for n in grid.values())
    # DDeP: 3 sigmas x 2 formulations x 3 seeds (in a, the grid already has the default at
    # 10 images, seeds 0 and 1); target x: DeP and DDeP x 2 seeds; conditioned DeP: 2 seeds
    n_ablation = (3 * 2 * 3 - 2 + 2 * 2 + 2) + (3 * 2 * 3 + 2 * 2 + 2)
    assert len(jobs) == n_grid + n_ablation
    runs = {j["run"] for j in jobs if j["dataset"] == "b"}
    assert {"ddep_s0.4_scaled", "ddep_sU0.1-0.4", "dep_s0.2_x", "ddep_s0.2_x",
            "dep_sU0.1-0.4_cond", "none", "21k"} <= runs
    assert sum(j["seed"] == 2 for j in jobs if j["dataset"] == "a") == 6  # the block's own seeds
    # every pretraining once per dataset, whatever the fractions and seeds that use it: DeP and
    # DDeP at the default, DDeP's 5 other sigma x formulation settings, x for both, DeP cond
    assert len(pretrainings(CONFIG)) == 2 * (2 + 5 + 2 + 1)


def test_only_datasets_with_several_settings_of_an_arm_at_a_fraction_are_ablated():
    T = "transunet_tiny"  # CONFIG's model: no `models`, its preset
    assert ablated_cells(finetune_jobs(CONFIG)) == [("a", T), ("b", T)]
    only_a = dict(CONFIG, ablations=[dict(block, datasets=["a"]) for block in CONFIG["ablations"]])
    assert ablated_cells(finetune_jobs(only_a)) == [("a", T)]
    assert {j["dataset"] for j in finetune_jobs(only_a) if j["run"] == "ddep_s0.4_scaled"} == {"a"}
    # a block that only repeats the default setting ablates nothing
    trivial = dict(CONFIG, ablations=[dict(noise_conditioning=[False], fractions=["10"])])
    assert ablated_cells(finetune_jobs(trivial)) == []


def test_the_vocabulary_imports_neither_torch_nor_pandas():
    code = "import sys, ddep.sweep; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


# --- models ------------------------------------------------------------------------------

SEGFORMER = "mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py"


def test_models_are_named_by_their_config_or_their_name():
    assert Model("tiny").name == Model("transunet_tiny").name == "transunet_tiny"
    assert Model("tiny").config == "transunet_tiny"
    assert Model(SEGFORMER).name == "segformer_mit-b0_8xb2-160k_ade20k-512x512"
    assert Model.parse({"config": SEGFORMER, "name": "segformer_b0"}).name == "segformer_b0"
    assert Model("my/configs/fcn.py").name == "fcn"
    assert Model.parse(Model("tiny")).cli_args() == "--model transunet_tiny --model-name transunet_tiny"
    with pytest.raises(ValueError, match="model name 'a b'"):
        Model("x.py", name="a b")
    with pytest.raises(ValueError, match="needs a `config:`"):
        Model.parse({"name": "x"})


def test_the_models_axis_multiplies_the_grid_and_defaults_to_the_preset():
    """Old configs (a preset, no models) keep their jobs; every model runs every grid job, an
    ablation block only its models'; pretrainings are per model."""
    base = {k: v for k, v in CONFIG.items() if k != "models"}
    assert [m.name for m in sweep_models(base)] == ["transunet_tiny"]
    assert [m.name for m in sweep_models(dict(base, preset="r50_vit_b16"))] == ["transunet_r50_vit_b16"]
    two = dict(base, models=["tiny", {"config": SEGFORMER, "name": "seg"}],
               ablations=[dict(b, models=["transunet_tiny"]) for b in base["ablations"]])
    one, both = finetune_jobs(base), finetune_jobs(two)
    grid = [j for j in one if j["part"] == "label-efficiency grid"]
    assert len([j for j in both if j["model"] == "seg"]) == len(grid)
    assert len([j for j in both if j["model"] == "transunet_tiny"]) == len(one)
    assert {(ds, m) for ds, m, _ in pretrainings(two)} == {(d, m) for d in ("a", "b")
                                                           for m in ("transunet_tiny", "seg")}
    assert ablated_cells(both) == [("a", "transunet_tiny"), ("b", "transunet_tiny")]
    with pytest.raises(ValueError, match=r"the name\(s\) \['seg'\] are used twice"):
        sweep_models(dict(base, models=[{"config": "tiny", "name": "seg"}, {"config": SEGFORMER, "name": "seg"}]))
    assert result_stem("builtin", "seg", False) == "builtin"
    assert result_stem("builtin", "seg", True) == "builtin_seg"


@pytest.mark.parametrize("label, parsed, value", [
    ("10", 10, 10.0),                          # an image count, in the parser and the sort value
    ("10%", Fraction(1, 10), 0.1), ("1/30", Fraction(1, 30), 1 / 30), ("1_30", Fraction(1, 30), 1 / 30),
    ("0.05", Fraction(1, 20), 0.05), ("all", Fraction(1), 1.0), ("full", Fraction(1), 1.0),
    ("1/1", Fraction(1), 1.0),
])
def test_one_fraction_parser_and_the_sort_value_agree(label, parsed, value):
    from ddep.data.splits import parse_fraction as splits_parser
    assert parse_fraction(label) == parsed and type(parse_fraction(label)) is type(parsed)
    assert splits_parser is parse_fraction
    assert fraction_value(label) == pytest.approx(value)


def test_unparseable_fractions_sort_last_but_do_not_parse():
    assert fraction_value("abc") == math.inf and fraction_value("3/2") == math.inf
    with pytest.raises(ValueError):
        parse_fraction("abc")
