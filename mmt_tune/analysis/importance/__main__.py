"""``python -m analysis.importance``."""

import sys

from mmt_tune.analysis.importance.cli import main

sys.exit(main())
