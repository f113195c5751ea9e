"""Checkpoint I/O: supervised encoder weights (timm format for the TransUNet, the backbone's
own state dict for any other), pretraining -> fine-tuning transfer, export."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from ddep.io import atomic_path
from ddep.checkpoints import CheckpointError, resolve_checkpoint


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
    return ckpt


def load_timm_encoder(vit: VisionTransformer, source: str | os.PathLike,
                      model_name: str = "this encoder") -> None:
    """Load timm-format hybrid ViT weights (e.g. ``vit_base_r50_s16_224.orig_in21k``) into
    ``vit``, resampling the position embedding to the model's grid. Classifier weights are
    ignored; any other missing, unexpected or mis-shaped key is an error."""
    path = resolve_checkpoint(source)
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("head.")}
    unfit = (f"timm checkpoint {path} does not fit {model_name} (wrong preset, or a checkpoint "
             f"of another model?)")
    try:  # timm's own converter: pos-embed resampling etc.
        state = checkpoint_filter_fn(state, vit)
    except (RuntimeError, KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{unfit}: {type(e).__name__}: {e}") from None
    own = vit.state_dict()
    bad = [f"{k}: {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if bad or missing or unexpected:
        raise CheckpointError(
            f"{unfit}: missing={missing[:5]} unexpected={unexpected[:5]} shape mismatches={bad[:5]}")
    vit.load_state_dict(state)


def encoder_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """A backbone's weights as :func:`load_encoder` reads them: its own format where it has
    one (the TransUNet encoder: timm's), else its state dict (parameters and buffers)."""
    state = backbone.pretrained_state_dict() if hasattr(backbone, "pretrained_state_dict") \
        else backbone.state_dict()
    return {k: v.detach().cpu() for k, v in state.items()}


def load_encoder(backbone: nn.Module, source: str | os.PathLike, model_name: str) -> None:
    """Load supervised encoder weights into ``backbone``: through its own loader where it has
    one (the TransUNet encoder: timm's, with position-embedding resampling), else as its state
    dict, from a backbone checkpoint or a whole segmentor's (``backbone.`` prefix). Every
    backbone tensor must be there with its shape: a checkpoint of another backbone is a
    :class:`CheckpointError`."""
    if hasattr(backbone, "load_pretrained"):
        backbone.load_pretrained(str(source), model_name)
        return
    path = resolve_checkpoint(source)
    state = _read_state_dict(path)
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    own = backbone.state_dict()
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
           for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    if bad or missing:
        raise CheckpointError(
            f"encoder weights {path} do not fit {model_name} ({type(backbone).__name__}): "
            f"{len(missing)} of its {len(own)} tensors missing (e.g. {missing[:3]}), "
            f"{len(bad)} of another shape (e.g. {bad[:3]}): a checkpoint of another backbone? "
            f"Pretrain this model's own (`ddep pretrain-supervised --model ...`) or name its "
            f"checkpoint as encoder_weights")
    backbone.load_state_dict({k: v for k, v in state.items() if k in own})


def encoder_fit(backbone: nn.Module, source: str | os.PathLike, model_name: str) -> None:
    """Check that ``source`` loads into ``backbone`` as the jobs load it (:func:`load_encoder`);
    else a one-line :class:`CheckpointError`: how many of the encoder's tensors the checkpoint
    has by name, which key prefix the loader expects, and the prefix that would fit."""
    try:
        load_encoder(backbone, source, model_name)
        return
    except CheckpointError:
        pass
    path = resolve_checkpoint(source)
    found = list(_read_state_dict(path))
    expected = list(encoder_state_dict(backbone))
    own_loader = hasattr(backbone, "load_pretrained")  # the TransUNet: timm's names only

    def matches(keys: list[str]) -> int:
        names = set(keys) | (set() if own_loader else {k.removeprefix("backbone.") for k in keys})
        return sum(k in names for k in expected)

    # the prefix (up to three dotted parts) under which the checkpoint holds the encoder, if any
    prefixes = {".".join(k.split(".")[:i]) + "." for k in found for i in (1, 2, 3) if k.count(".") >= i}
    best = max(prefixes, default="", key=lambda p: matches([k[len(p):] for k in found if k.startswith(p)]))
    stripped = matches([k[len(best):] for k in found if k.startswith(best)]) if best else 0
    wanted = "no prefix" if own_loader else "no prefix or 'backbone.'"
    hint = (f"its keys sit under {best!r} ({stripped} match without it): save them without that prefix"
            if stripped > matches(found) else "a checkpoint of another encoder?")
    raise CheckpointError(
        f"{path} has {matches(found)} of the {len(expected)} tensors of {model_name}'s encoder by name: "
        f"expected {wanted} (e.g. {expected[0]!r}), found e.g. {found[0] if found else None!r}; {hint}")


@dataclass
class TransferReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the checkpoint, not taken
    missing: list[str] = field(default_factory=list)  # in the model, left as initialised

    def summary(self) -> str:
        def heads(keys: list[str]) -> str:
            return ", ".join(sorted({k.rsplit(".", 1)[0] for k in keys})) or "-"
        return (f"loaded {len(self.loaded)} tensors; skipped {len(self.skipped)} "
                f"({heads(self.skipped)}); missing {len(self.missing)} ({heads(self.missing)})")


def transfer_weights(model: nn.Module, source: str | os.PathLike,
                     model_name: str = "this model") -> TransferReport:
    """Load every tensor of a pretraining checkpoint except the final projection.

    The final projection is named by the model (``model.final_projection``); tensors absent
    from the model (e.g. the noise-level embedding) are skipped. A tensor of another shape, or
    a checkpoint of which nothing fits, is a :class:`CheckpointError` naming the checkpoint
    and ``model_name`` (another preset or architecture)."""
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"pretrained checkpoint not found: {path}")
    state = _read_state_dict(path)
    projection = model.final_projection + "."
    own = model.state_dict()
    report = TransferReport()
    take, mismatched = {}, []
    for key, value in state.items():
        if key.startswith(projection) or key not in own:
            report.skipped.append(key)
        elif own[key].shape != value.shape:
            mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            take[key] = value
            report.loaded.append(key)
    if mismatched or not take:
        detail = (f"{len(mismatched)} tensors of another shape, e.g. {mismatched[:3]}" if mismatched
                  else f"none of its {len(state)} tensors has a name of this model")
        raise CheckpointError(f"{path} does not fit {model_name} ({detail}): it was pretrained "
                              f"with another model (another backbone or head)")
    report.missing = sorted(set(own) - set(take))
    model.load_state_dict(take, strict=False)
    return report


def save_atomic(obj: object, path: str | os.PathLike) -> None:
    """torch.save to a temporary file next to ``path``, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in obj.items()}, str(tmp))  # type: ignore[union-attr]
        else:
            torch.save(obj, tmp)


def export_weights(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Weights-only checkpoint (no optimizer state), as used downstream."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_atomic({"state_dict": state, "meta": meta or {}}, path)
