"""``python -m analysis.importance``: runs ``mmt-tune importance`` (:mod:`mmt_tune.analysis.importance`)."""

import sys

if __name__ == "__main__":
    from mmt_tune.analysis.importance.cli import main

    sys.exit(main())
