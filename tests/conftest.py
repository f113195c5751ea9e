"""Every test builds modules through mmseg's registries, as the runner does (default scope mmseg)."""
from mmseg.utils import register_all_modules

import ddep.models  # noqa: F401  (registers ddep's modules)

register_all_modules(init_default_scope=True)
