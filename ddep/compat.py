"""The one place where ddep works around its pinned dependencies."""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6 that means
    ``weights_only=True``, which rejects mmengine's own checkpoints (they pickle the message
    hub and config), so resuming and ``load_from`` fail. Local checkpoints are written by the
    user's own runs, so loading them in full is the intended behaviour."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)
