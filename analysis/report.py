"""``python -m analysis.report``: runs ``mmt-tune report`` (:mod:`mmt_tune.analysis.report`)."""

import sys

if __name__ == "__main__":
    from mmt_tune.analysis.report import main

    sys.exit(main())
