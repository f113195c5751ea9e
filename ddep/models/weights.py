"""Checkpoint I/O: timm-format encoder weights, pretraining -> fine-tuning transfer, export."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from ddep.io import atomic_path
from ddep.preflight import CheckpointError, resolve_checkpoint


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
                              f"with another preset or architecture")
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
