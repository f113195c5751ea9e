"""Atomic, strict JSON: NaN becomes null wherever it sits."""
from __future__ import annotations

import json
import math

from ddep.io import write_json


def test_nan_becomes_null_inside_lists_and_nested_objects(tmp_path):
    path = write_json(tmp_path / "r.json", {"mIoU": math.nan, "per_class": [1.0, math.nan],
                                             "nested": {"xs": [[math.nan], (2.0, math.nan)]}})
    assert json.loads(path.read_text()) == {"mIoU": None, "per_class": [1.0, None],
                                            "nested": {"xs": [[None], [2.0, None]]}}
