"""The sweep's vocabulary: models, arms, noise settings and their names, label fractions, the
run identity, and the expansion of a config into fine-tuning jobs. The Snakefile, the CLI and the
analysis all read it from here; it imports neither torch nor pandas, so parsing the Snakefile
stays fast.

A denoising pretraining is named ``{arm}_s{sigma}`` plus one suffix per ablation axis that
differs from the paper's setting (``_scaled``, ``_x``, ``_cond``)::

    ddep_s0.2               sigma 0.2, unscaled, predict eps, no conditioning (the paper's)
    ddep_sU0.1-0.4_cond     sigma ~ U(0.1, 0.4), decoder conditioned on sigma
    dep_s0.4_scaled_x       variance-preserving corruption, predict the clean image

so a name is a function of the setting alone, whatever the config's defaults.
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

# The noise-setting axes' allowed values, the paper's setting first (each axis' default).
FORMULATIONS = ("unscaled", "scaled")
TARGETS = ("eps", "x")
CONDITIONING = ("off", "on")
LOSSES = ("l2", "l1")
DEFAULT_SIGMA = 0.2  # the paper's best fixed noise level
# The ablation axes of a denoising setting, in table order.
NOISE_AXES = ("sigma", "formulation", "target", "noise_conditioning")
# Noise columns of arms without denoising pretraining (none, 21K).
NO_SETTING = "-"

# One cell of the results grid (everything but the seed), and one run.
CELL_KEYS = ["dataset", "model", "label_fraction", "n_labelled", "arm", *NOISE_AXES]
RUN_KEYS = [*CELL_KEYS, "seed"]
# Read back from CSV as strings: "1/30", "0.2" and "-" must not become numbers or NaN.
STRING_COLUMNS = ["dataset", "model", "label_fraction", "arm", *NOISE_AXES]


# --- models --------------------------------------------------------------------------------

# The TransUNet presets' short names (the ``preset:`` key, ``--preset``) and their model files.
PRESET_MODELS = {"tiny": "transunet_tiny", "r50_vit_b16": "transunet_r50_vit_b16"}
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*(?:_[A-Za-z0-9.+-]+)*")


@dataclass(frozen=True)
class Model:
    """One model of the sweep: ``config`` names its mmseg model config (a file of
    ``ddep/configs/_base_/models`` such as ``transunet_tiny``, an mmseg config
    ``mmseg::segformer/...py``, or a ``.py`` file), ``name`` is its short name in file names
    and in the run identity (default: the config's file stem), ``encoder_weights`` the
    supervised encoder its 21K and DDeP arms start from (default: the dataset's)."""

    config: str
    name: str = ""
    encoder_weights: str | None = None

    def __post_init__(self) -> None:
        config = PRESET_MODELS.get(str(self.config), str(self.config))
        object.__setattr__(self, "config", config)
        if not self.name:
            stem = config.removeprefix("mmseg::").rsplit("/", 1)[-1].removesuffix(".py")
            object.__setattr__(self, "name", PRESET_MODELS.get(stem, stem))
        if not _MODEL_NAME.fullmatch(self.name):
            raise ValueError(f"model name {self.name!r}: letters, digits and . + - _ only "
                             f"(it names files); give the model a `name:`")

    @classmethod
    def parse(cls, entry: "str | dict | Model") -> "Model":
        """From a config's ``models`` entry: a string (the config) or a mapping
        ``{config: ..., name: ..., encoder_weights: ...}``."""
        if isinstance(entry, Model):
            return entry
        if isinstance(entry, dict):
            if "config" not in entry:
                raise ValueError(f"models entry {entry}: needs a `config:` (e.g. transunet_tiny or "
                                 f"mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py)")
            return cls(config=entry["config"], name=entry.get("name") or "",
                       encoder_weights=entry.get("encoder_weights"))
        return cls(config=str(entry))

    def cli_args(self) -> str:
        """The training jobs' ``--model`` options."""
        return f"--model {self.config} --model-name {self.name}"


def sweep_models(config: dict) -> list[Model]:
    """The config's ``models`` (default: its ``preset``, else the tiny TransUNet), names unique."""
    entries = config.get("models") or [config.get("preset", "tiny")]
    models = [Model.parse(e) for e in entries]
    names = [m.name for m in models]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"models: the name(s) {dup} are used twice; give each model its own `name:`")
    return models


def model_of_run(data: dict) -> str:
    """A run JSON's model name; runs from before the models axis name a ``preset``."""
    if data.get("model"):
        return str(data["model"])
    preset = str(data.get("preset", "tiny"))
    return PRESET_MODELS.get(preset, preset)


def result_stem(dataset: str, model: str, several_models: bool) -> str:
    """File stem of a dataset's tables and figures: ``builtin``, or ``builtin_segformer``
    when the dataset has results of several models."""
    return f"{dataset}_{model}" if several_models else dataset


# --- noise levels --------------------------------------------------------------------------

def parse_sigma(label: object) -> tuple[str, tuple[float, ...]]:
    """Classify a sigma: ("fixed", (v,)); ("interval", (lo, hi)) for [lo, hi], "U(lo,hi)" or
    the file-name slug "Ulo-hi"; ("none", ()) for "-"; ("other", ()) for anything else."""
    if isinstance(label, (list, tuple)) and len(label) == 2:
        return "interval", (float(label[0]), float(label[1]))
    s = str(label).strip()
    if s == NO_SETTING:
        return "none", ()
    try:
        return "fixed", (float(s),)
    except ValueError:
        pass
    m = re.fullmatch(r"[Uu]\s*[(\[]?\s*([^,\s()\[\]]+?)\s*(?:,|-(?=\d|\.))\s*([^,\s()\[\]]+)\s*[)\]]?", s)
    if m:
        try:
            return "interval", (float(m.group(1)), float(m.group(2)))
        except ValueError:
            pass
    return "other", ()


def sigma_label(sigma: object) -> str:
    """The label tables and run JSONs carry: 0.20 -> "0.2"; [0.2, 0.3], "U0.2-0.3" or
    "U[0.2, 0.3]" -> "U(0.2,0.3)"; "-" and unknown labels are returned as they are."""
    kind, v = parse_sigma(sigma)
    if kind == "fixed":
        return f"{v[0]:g}"
    if kind == "interval":
        return f"U({v[0]:g},{v[1]:g})"
    return str(sigma).strip()


def sigma_slug(sigma: object) -> str:
    """The file-name form: 0.2 -> "0.2"; [0.2, 0.3] or "U(0.2,0.3)" -> "U0.2-0.3"."""
    kind, v = parse_sigma(sigma)
    if kind == "interval":
        return f"U{v[0]:g}-{v[1]:g}"
    if kind == "fixed":
        return f"{v[0]:g}"
    raise ValueError(f"not a noise level: {sigma!r} (a number, or [a, b] for U(a, b))")


def sigma_values(sigma: object) -> tuple[float, ...]:
    """A noise level's values, checked: ``(v,)`` or ``(a, b)``, finite, 0 <= a <= b."""
    kind, v = parse_sigma(sigma)
    if kind == "interval" and not (0 <= v[0] <= v[1] and math.isfinite(v[1])):  # NaN fails every comparison
        raise ValueError(f"noise sigma interval [a, b] needs finite 0 <= a <= b, got [{v[0]}, {v[1]}]")
    if kind == "fixed" and not (v[0] >= 0 and math.isfinite(v[0])):
        raise ValueError(f"noise sigma must be a finite number >= 0, got {v[0]}")
    if kind not in ("fixed", "interval"):
        raise ValueError(f"not a noise level: {sigma!r} (a number, or [a, b] for U(a, b))")
    return v


def sigma_sort_key(label: object) -> tuple:
    """Fixed values ascending, then intervals (lower, upper bound), then others, then "-"."""
    kind, v = parse_sigma(label)
    return ({"fixed": 0, "interval": 1, "other": 2, "none": 3}[kind], v, str(label))


# --- label fractions ---------------------------------------------------------------------

def fraction_slug(fraction: object) -> str:
    """File-name form of a label fraction: "1/30" -> "1_30", "10" -> "10"."""
    return str(fraction).replace("/", "_")


def parse_fraction(x: str | float | int | Fraction) -> Fraction | int:
    """The one parser of a label budget. An ``int`` (or a string of digits, ``"10"``) is an
    image count; ``"1/30"``, its slug ``"1_30"``, ``"0.05"``, ``"10%"`` and any float are a
    fraction in (0, 1]; ``"all"``/``"full"`` is the whole set (Fraction 1)."""
    if isinstance(x, bool):
        raise ValueError(f"invalid label fraction {x!r}")
    if isinstance(x, int):
        if x < 1:
            raise ValueError(f"image count must be >= 1, got {x}")
        return x
    if isinstance(x, str):
        s = x.strip().lower()
        if s in ("all", "full"):
            return Fraction(1)
        if s.isdigit():
            return parse_fraction(int(s))
        if re.fullmatch(r"\d+_\d+", s):  # the file-name slug
            s = s.replace("_", "/")
        try:
            frac = Fraction(s[:-1]) / 100 if s.endswith("%") else Fraction(s)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"invalid label fraction {x!r}") from None
    elif isinstance(x, Fraction):
        frac = x
    elif isinstance(x, float):
        frac = Fraction(repr(x))  # the decimal the user wrote: 0.05 -> 1/20 exactly
    else:
        raise ValueError(f"invalid label fraction {x!r}")
    if not 0 < frac <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {x!r}")
    return frac


def fraction_value(label: object) -> float:
    """A label's sort value, from :func:`parse_fraction`: fractions by size, then image counts
    by count; unparseable labels give +inf so they sort last."""
    try:
        return float(parse_fraction(label if isinstance(label, (int, float, Fraction)) else str(label)))
    except ValueError:
        return math.inf


# --- denoising settings and run names ------------------------------------------------------

def conditioning_label(on: object) -> str:
    """"on" / "off" for a boolean (or its YAML/CSV spelling)."""
    return "on" if str(on).strip().lower() in ("true", "1", "on", "yes") else "off"


@dataclass(frozen=True)
class NoiseSetting:
    """One denoising-pretraining setting: a point on the ablation axes."""

    sigma: str = sigma_label(DEFAULT_SIGMA)  # label: "0.2" or "U(0.1,0.4)"
    formulation: str = FORMULATIONS[0]       # unscaled: x + sigma*eps; scaled: variance preserving
    target: str = TARGETS[0]                 # what the network predicts: eps | x
    noise_conditioning: str = CONDITIONING[0]  # off | on: the decoder sees sigma

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", sigma_label(self.sigma))
        object.__setattr__(self, "noise_conditioning", conditioning_label(self.noise_conditioning))
        sigma_slug(self.sigma)  # raises for a label that is not a noise level
        for axis, allowed in (("formulation", FORMULATIONS), ("target", TARGETS)):
            if getattr(self, axis) not in allowed:
                raise ValueError(f"noise {axis} must be one of {allowed}, got {getattr(self, axis)!r}")

    @classmethod
    def from_config(cls, noise: dict) -> "NoiseSetting":
        """From a config's ``denoising`` section (or an ablation's single values)."""
        return cls(**{k: noise[k] for k in NOISE_AXES if k in noise})

    @property
    def slug(self) -> str:
        """``s0.2``, ``sU0.1-0.4_cond``, ``s0.4_scaled_x``: only what differs from the paper."""
        parts = [f"s{sigma_slug(self.sigma)}"]
        if self.formulation != "unscaled":
            parts.append(self.formulation)
        if self.target != "eps":
            parts.append(self.target)
        if self.noise_conditioning == "on":
            parts.append("cond")
        return "_".join(parts)

    @classmethod
    def from_slug(cls, slug: str) -> "NoiseSetting":
        head, *flags = slug.split("_")
        if not head.startswith("s") or len(set(flags)) != len(flags) or \
                not set(flags) <= {"scaled", "x", "cond"}:
            raise ValueError(f"not a noise-setting name: {slug!r} (e.g. s0.2, sU0.1-0.4_scaled_x_cond)")
        return cls(sigma=head[1:], formulation="scaled" if "scaled" in flags else "unscaled",
                   target="x" if "x" in flags else "eps",
                   noise_conditioning="on" if "cond" in flags else "off")

    def cli_args(self) -> str:
        """The ``ddep pretrain-denoise`` options of this setting."""
        kind, v = parse_sigma(self.sigma)
        args = f"--sigma {' '.join(f'{x:g}' for x in v)} --formulation {self.formulation} " \
               f"--target {self.target}"
        return args + (" --noise-conditioning" if self.noise_conditioning == "on" else "")

    def columns(self) -> dict[str, str]:
        return {axis: getattr(self, axis) for axis in NOISE_AXES}


# --- arms ------------------------------------------------------------------------------------
# An arm is a record of where its network starts; the paper's four are presets of it (PRESET_ARMS).
# Its encoder starts random, from the supervised encoder (the model's or dataset's
# `encoder_weights`, else the workflow's stand-in), or from a checkpoint: any other value, a file
# or a timm name in the local Hugging Face cache. Its decoder starts random or denoising-pretrained
# (the encoder frozen then, or not) on unlabelled images: the target's train images, the source
# images (the dataset's `unlabelled` for such arms, the built-in source set), or a folder.
RANDOM, SUPERVISED, DENOISE = "random", "supervised", "denoise"
DECODERS = (RANDOM, DENOISE)
TARGET, SOURCE = "target", "source"
ARM_FIELDS = ("name", "encoder", "decoder", "frozen_encoder", "unlabelled")
# An arm name names files and starts a run's name; "_" separates the noise setting (ddep_s0.2).
_ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


class ArmError(ValueError):
    """An ``arms`` entry that cannot run: one line naming the key and the fix."""


@dataclass(frozen=True)
class Arm:
    """One arm of the sweep: its name and where its network starts (see above)."""

    name: str
    encoder: str = RANDOM
    decoder: str = RANDOM
    frozen_encoder: bool = False  # while the decoder is denoised
    unlabelled: str = TARGET      # the images the decoder is denoised on

    @property
    def denoised(self) -> bool:
        """Whether the arm's decoder is denoising-pretrained (its runs have a noise setting)."""
        return self.decoder == DENOISE

    @property
    def pretrained_encoder(self) -> bool:
        return self.encoder != RANDOM

    @property
    def checkpoint(self) -> str | None:
        """The encoder checkpoint the arm names (a file or a hub name), if it names one."""
        return None if self.encoder in (RANDOM, SUPERVISED) else self.encoder

    def describe(self) -> str:
        """"supervised encoder (frozen), decoder denoised on the source images"."""
        encoder = {RANDOM: "random encoder", SUPERVISED: "supervised encoder"}.get(
            self.encoder, f"encoder from `{self.encoder}`")
        if not self.denoised:
            return f"{encoder}, random decoder"
        images = {TARGET: "the target's images", SOURCE: "the source images"}.get(
            self.unlabelled, f"`{self.unlabelled}`")
        return f"{encoder}{' (frozen)' if self.frozen_encoder else ''}, decoder denoised on {images}"


# The paper's arms, in paper order (table rows, bar order). Every reader of an arm reads its
# fields; the names are read here only.
PRESET_ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("none"),
    Arm("21k", encoder=SUPERVISED),
    Arm("dep", decoder=DENOISE),
    Arm("ddep", encoder=SUPERVISED, decoder=DENOISE, frozen_encoder=True, unlabelled=SOURCE),
)}
ARM_ORDER = tuple(PRESET_ARMS)
# The arms an ablation block varies when it names none: the denoised presets.
ABLATION_ARMS = tuple(name for name, arm in PRESET_ARMS.items() if arm.denoised)


def preset_arm(name: str) -> Arm:
    """The preset of that name; any other name: an arm with every field at its default (what a
    job told only an arm's name assumes)."""
    return PRESET_ARMS.get(name) or Arm(name)


def parse_arm(entry: "str | dict | Arm", where: str = "arms") -> Arm:
    """An ``arms`` entry: a preset's name or a mapping ``{name, encoder, decoder,
    frozen_encoder, unlabelled}``; :class:`ArmError` names the key and the fix."""
    if isinstance(entry, Arm):
        return entry
    if isinstance(entry, str):
        if entry in PRESET_ARMS:
            return PRESET_ARMS[entry]
        raise ArmError(f"{where}: {entry!r} is not a preset arm ({', '.join(PRESET_ARMS)}); define "
                       f"your own as a mapping {{name: {entry}, encoder: ..., decoder: ...}}")
    if not isinstance(entry, dict):
        raise ArmError(f"{where}: {entry!r}: give a preset arm's name or a mapping with the fields "
                       f"{', '.join(ARM_FIELDS)}")
    unknown = [k for k in entry if k not in ARM_FIELDS]
    if unknown:
        import difflib
        close = difflib.get_close_matches(str(unknown[0]), ARM_FIELDS, n=1)
        named = f" ({entry['name']})" if isinstance(entry.get("name"), str) else ""
        raise ArmError(f"{where}{named}.{unknown[0]}: unknown field{f' (did you mean {close[0]}?)' if close else ''}; "
                       f"an arm has {', '.join(ARM_FIELDS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _ARM_NAME.fullmatch(name):
        raise ArmError(f"{where}.name: {name!r}: name the arm with letters, digits and . + - "
                       f"(it names files; no _, which starts a run's noise setting)")
    where = f"{where} ({name})"
    if name in PRESET_ARMS:
        raise ArmError(f"{where}.name: {name!r} is a preset arm; list the preset by its name "
                       f"alone, or give yours another name (e.g. {name}-mine)")
    record = {k: entry.get(k, getattr(Arm, k)) for k in ARM_FIELDS[1:]}
    if record["decoder"] not in DECODERS:
        raise ArmError(f"{where}.decoder: {record['decoder']!r} is not a decoder; use one of "
                       f"{', '.join(DECODERS)}")
    for key in ("encoder", "unlabelled"):
        if not isinstance(record[key], str) or not record[key].strip():
            raise ArmError(f"{where}.{key}: {record[key]!r}: use "
                           + ("random, supervised, a checkpoint file or a timm name" if key == "encoder"
                              else f"{TARGET}, {SOURCE} or a folder of images"))
    if not isinstance(record["frozen_encoder"], bool):
        raise ArmError(f"{where}.frozen_encoder: {record['frozen_encoder']!r}: use true or false")
    if record["frozen_encoder"] and record["encoder"] == RANDOM:
        raise ArmError(f"{where}.frozen_encoder: a frozen random encoder learns nothing; set encoder: "
                       f"{SUPERVISED} (or a checkpoint), or frozen_encoder: false")
    if record["decoder"] != DENOISE:
        for key in ("frozen_encoder", "unlabelled"):
            if key in entry and entry[key] != getattr(Arm, key):
                raise ArmError(f"{where}.{key}: applies while the decoder is denoised; set decoder: "
                               f"{DENOISE}, or drop {key}")
    return Arm(name, **record)


def sweep_arms(config: dict) -> list[Arm]:
    """The config's ``arms``, each a record; names unique."""
    arms = [parse_arm(entry, f"arms[{i}]") for i, entry in enumerate(config["arms"])]
    names = [a.name for a in arms]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ArmError(f"arms: the name(s) {dup} are listed twice; give each arm its own name")
    return arms


def arm_table(config: dict) -> dict[str, Arm]:
    """Every arm a config may name (its ``arms``, its ablation blocks), by name: the presets,
    then the config's own."""
    return {**PRESET_ARMS, **{a.name: a for a in sweep_arms(config)}}


def ablation_arms(block: dict, arms: dict[str, Arm], where: str = "ablations") -> list[Arm]:
    """The denoised arms an ablation block varies (default: the denoised presets)."""
    out = []
    for name in block.get("arms", ABLATION_ARMS):
        if name not in arms or not arms[name].denoised:
            raise ArmError(f"{where}.arms: {name!r} is not a denoised arm (decoder: {DENOISE}) of "
                           f"`arms` or the presets; ablations vary the noise of "
                           f"{', '.join(n for n, a in arms.items() if a.denoised)}")
        out.append(arms[name])
    return out


def encoder_weights(config: dict, dataset: str, model: Model) -> str | None:
    """The supervised encoder a model's ``encoder: supervised`` arms (21K, DDeP) start from: the
    model's ``encoder_weights``, else the dataset's; None where the workflow trains its own
    stand-in."""
    return model.encoder_weights or config["datasets"][dataset].get("encoder_weights") or None


def arm_images(dataset: dict, arm: Arm, arms: Iterable[Arm] = PRESET_ARMS.values()
               ) -> tuple[str | None, list[int] | None]:
    """The folder of unlabelled images a denoised arm learns from on a dataset (None: the
    dataset's own train images) and their crop (None: the dataset's). A folder the arm names
    wins; then the dataset's ``unlabelled`` for the arm's name (a mapping), or for every arm (a
    folder); then, for ``source``, the dataset's ``unlabelled.source`` or the folder it names for
    another arm on the source images (``arms``). The crop: ``unlabelled_crop`` of the arm's name,
    else of another arm on the same folder."""
    arms = list(arms)
    given = dataset.get("unlabelled")
    per_arm = given if isinstance(given, dict) else {}
    if arm.unlabelled not in (TARGET, SOURCE):
        folder = arm.unlabelled
    elif arm.name in per_arm:
        folder = per_arm[arm.name]
    elif given and not per_arm:
        folder = given
    elif arm.unlabelled == SOURCE:
        named = [per_arm.get(SOURCE)] + [per_arm.get(a.name) for a in arms if a.unlabelled == SOURCE]
        folder = next((f for f in named if f), None)
    else:
        folder = None
    crops = dataset.get("unlabelled_crop") or {}
    crop = crops.get(arm.name)
    if crop is None and folder:
        same = [a.name for a in arms if a.denoised and a.name in crops and
                arm_images(dataset, a, ())[0] == folder]
        crop = crops[same[0]] if same else crops.get(SOURCE) if folder == per_arm.get(SOURCE) else None
    return folder, crop


def encoder_source(config: dict, dataset: str, model: Model, arm: Arm) -> str | None:
    """Where an arm's encoder starts on a dataset and model: None (random), the supervised
    encoder (``""``: the workflow's stand-in), or the arm's checkpoint."""
    if arm.encoder == SUPERVISED:
        return encoder_weights(config, dataset, model) or ""
    return arm.checkpoint


def pretraining_identity(config: dict, dataset: str, model: Model, arm: Arm) -> tuple:
    """What a denoising pretraining depends on besides its noise setting: two arms that agree
    here share their pretraining."""
    return (encoder_source(config, dataset, model, arm), arm.frozen_encoder,
            *map(str, arm_images(config["datasets"][dataset], arm, arm_table(config).values())))


def denoise_step(arm: Arm) -> str:
    """The preset whose pretraining step costs what ``arm``'s does (encoder frozen or not): the
    step of ``benchmarks/step_cost.csv`` and :mod:`ddep.step_flops`."""
    return next(name for name, p in PRESET_ARMS.items()
                if p.denoised and p.frozen_encoder == arm.frozen_encoder)


def run_name(arm: "Arm | str", setting: NoiseSetting | None) -> str:
    """``none``, ``21k``, or the pretraining's name (``ddep_s0.2``)."""
    record = arm if isinstance(arm, Arm) else PRESET_ARMS.get(arm)
    denoised = record.denoised if record else setting is not None
    name = arm.name if isinstance(arm, Arm) else arm
    return f"{name}_{setting.slug}" if denoised and setting is not None else name


def parse_run_name(name: str, arms: dict[str, Arm] = PRESET_ARMS) -> tuple[str, NoiseSetting | None]:
    """A run's (or pretraining's) arm name and noise setting; ``arms``: the arms it may name."""
    arm, _, slug = name.partition("_")
    if arm not in arms or arms[arm].denoised != bool(slug):
        raise ValueError(f"not a run name: {name!r} (none, 21k, dep_s0.2, ddep_sU0.1-0.4_cond, ...)")
    return arm, NoiseSetting.from_slug(slug) if slug else None


# --- the sweep -----------------------------------------------------------------------------

# The two parts of a sweep: the label-efficiency grid, and what the ablation blocks add to it.
GRID, ABLATIONS = "label-efficiency grid", "noise ablations"

def ablation_settings(block: dict, default: NoiseSetting) -> list[NoiseSetting]:
    """Every setting of one ablation block: the product of the axes it lists; an axis it does
    not list stays at the default."""
    axes = [block.get(axis, [getattr(default, axis)]) for axis in NOISE_AXES]
    return [NoiseSetting(*values) for values in itertools.product(*axes)]


def finetune_jobs(config: dict) -> list[dict]:
    """Every fine-tuning run of a (schema-valid) config, once: the label-efficiency grid
    (datasets x fractions x arms x seeds at the default noise setting), then each ablation
    block (its datasets and models, default all, x arms x settings x fractions x seeds). Keys: dataset, label_fraction, fraction
    (slug), arm (its name), arm_spec (its :class:`Arm`), seed, run (the run's name), setting
    (NoiseSetting or None), pretraining (the denoising pretraining it starts from, shared by the
    arms whose records agree, or None), part (GRID, or ABLATIONS for a run that only an ablation
    block asks for), model (its name) and model_spec (its :class:`Model`); every model runs
    every job. Raises :class:`ArmError` for a bad ``arms`` entry."""
    default = NoiseSetting.from_config(config["denoising"])
    rows: dict[tuple, dict] = {}
    models = sweep_models(config)
    arms, table = sweep_arms(config), arm_table(config)

    def pretraining(ds: str, m: Model, arm: Arm, setting: NoiseSetting | None) -> str | None:
        if not arm.denoised:
            return None
        identity = pretraining_identity(config, ds, m, arm)
        # named after the first arm, presets first, whose record agrees: the others share it
        first = next(a for a in table.values() if a.denoised and pretraining_identity(config, ds, m, a) == identity)
        return run_name(first, setting)

    def add(ds: str, fraction: object, arm: Arm, setting: NoiseSetting | None, seed: int,
            part: str, among: list[Model] = models) -> None:
        setting = setting if arm.denoised else None
        run = run_name(arm, setting)
        for m in among:
            if (ds, m.name, str(fraction), run, seed) not in rows:
                rows[ds, m.name, str(fraction), run, seed] = dict(
                    dataset=ds, model=m.name, model_spec=m, label_fraction=str(fraction),
                    fraction=fraction_slug(fraction), arm=arm.name, arm_spec=arm, seed=int(seed),
                    run=run, setting=setting, pretraining=pretraining(ds, m, arm, setting), part=part)

    for ds, d in config["datasets"].items():
        for fraction in d["fractions"]:
            seeds = (d.get("fraction_seeds") or {}).get(str(fraction), config["seeds"])
            for arm, seed in itertools.product(arms, seeds):
                add(ds, fraction, arm, default, seed, GRID)
        for i, block in enumerate(config.get("ablations") or []):
            if ds not in block.get("datasets", [ds]):
                continue
            ablated = [m for m in models if m.name in block.get("models", [m.name])]
            for fraction, arm, setting, seed in itertools.product(
                    block["fractions"], ablation_arms(block, table, f"ablations[{i}]"),
                    ablation_settings(block, default), block.get("seeds", config["seeds"])):
                add(ds, fraction, arm, setting, seed, ABLATIONS, ablated)
    return list(rows.values())


def pretrainings(config: dict) -> list[tuple[str, str, str]]:
    """(dataset, model, pretraining name) of every denoising pretraining the sweep needs, once."""
    return list(pretraining_parts(config))


def pretraining_parts(config: dict) -> dict[tuple[str, str, str], str]:
    """Each denoising pretraining, (dataset, model, name), to its part of the sweep: GRID where
    a label-efficiency run uses it (its ablation runs then share it), else ABLATIONS."""
    found: dict[tuple[str, str, str], str] = {}
    for j in finetune_jobs(config):  # per dataset, the grid's runs come first
        if j["pretraining"] is not None:
            found.setdefault((j["dataset"], j["model"], j["pretraining"]), j["part"])
    return found


# A cell of the results grid in which noise settings are compared: one arm at one fraction.
ABLATION_CELL = ("dataset", "model", "arm", "label_fraction")


def ablated_keys(rows: Iterable[dict]) -> set[tuple]:
    """The ABLATION_CELL keys at which ``rows`` (jobs, or results with a ``setting``) hold more
    than one noise setting."""
    settings: dict[tuple, set] = {}
    for r in rows:
        if r["setting"] is not None:
            settings.setdefault(tuple(r[k] for k in ABLATION_CELL), set()).add(r["setting"])
    return {key for key, found in settings.items() if len(found) > 1}


def ablated_cells(jobs: list[dict]) -> list[tuple[str, str]]:
    """(dataset, model) pairs where some arm is fine-tuned at one fraction after several noise
    settings: those get a noise-ablation table and figure."""
    ablated = ablated_keys(jobs)
    return list(dict.fromkeys(key[:2] for key in (tuple(j[k] for k in ABLATION_CELL) for j in jobs)
                              if key in ablated))
