"""Checkpoint files: where a weights source (a file or a timm hub name) lives on disk, and the
error for one that is missing or does not fit. Below preflight and the models, which both use
them; imports no torch."""
from __future__ import annotations

import os
from pathlib import Path

# `hf` is huggingface_hub's command line (its old `huggingface-cli` is gone from the pinned release);
# tests/test_preflight.py runs the named command's --help in the installed environment.
HUB_DOWNLOAD = "hf download timm/vit_base_r50_s16_224.orig_in21k"
HUB_HINT = (f"download it on a machine with internet access, e.g. `{HUB_DOWNLOAD}` (then copy "
            "~/.cache/huggingface, or $HF_HOME, to this machine), or pass the path of a .safetensors/.pth file")


class CheckpointError(ValueError):
    """A checkpoint is missing or does not fit the model."""


def resolve_checkpoint(source: str | os.PathLike) -> Path:
    """A local file, or a timm hub name (``vit_base_r50_s16_224.orig_in21k``) found in the
    local Hugging Face cache. Never downloads."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_file():
        return path
    if path.suffix in (".pth", ".pt", ".bin", ".safetensors") or os.sep in str(source):
        raise CheckpointError(f"checkpoint file not found: {path}")
    from huggingface_hub import try_to_load_from_cache
    repo = source if str(source).startswith("timm/") else f"timm/{source}"
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(repo_id=str(repo), filename=filename)
        if isinstance(cached, str):
            return Path(cached)
    raise CheckpointError(f"timm weights {repo!r} are not in the local Hugging Face cache "
                          f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); {HUB_HINT}")
