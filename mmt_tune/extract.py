"""``python -m mmt_tune.extract --manifest M --params fast|paper|FILE --out features.parquet``.

The extraction lives in :mod:`mmt_tune.radiomics` (settings, worker, cache, driver, this command's code).
"""

import sys

from mmt_tune.radiomics.cli import main

if __name__ == "__main__":
    sys.exit(main())
