"""The one place where ddep works around its pinned dependencies."""
from __future__ import annotations

import functools
import os.path as osp

import mmengine.config.config as mmengine_config
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


_yapf_format_code = mmengine_config.FormatCode


@functools.lru_cache(maxsize=32)
def _format_code(source: str, style: tuple) -> tuple[str, bool]:
    return _yapf_format_code(source, style_config=dict(style))


def format_code_once(source: str, style_config=None, **kwargs) -> tuple[str, bool]:
    """mmengine formats a config's text with yapf on every read of ``Config.pretty_text``, and a
    training job reads it seven times (its log, two dumps, the message hub twice, a checkpoint's
    meta): a few tenths of a second each on a 2-core CPU, for the same text. yapf is a pure
    function of text and style, so each text is formatted once."""
    if kwargs or not isinstance(style_config, dict):
        return _yapf_format_code(source, style_config=style_config, **kwargs)
    return _format_code(source, tuple(sorted(style_config.items())))


mmengine_config.FormatCode = format_code_once
