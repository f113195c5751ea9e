"""``python -m ddep.analysis {aggregate,figures} ...``"""

import sys

from .cli import main

sys.exit(main())
