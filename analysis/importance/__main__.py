"""``python -m analysis.importance``."""

import sys

from analysis.importance.cli import main

sys.exit(main())
