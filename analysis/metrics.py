"""``python -m analysis.metrics``: runs ``mmt-tune metrics`` (:mod:`mmt_tune.analysis.metrics`)."""

import sys

if __name__ == "__main__":
    from mmt_tune.analysis.metrics import main

    sys.exit(main())
