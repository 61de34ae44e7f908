"""How long one scan takes at clinical size: PyRadiomics' own brain MRI test cases, `paper` and `fast` settings.

    python benchmarks/extract_clinical.py [--record]

The cases are PyRadiomics' `brain1` and `brain2` (T1-weighted brain MRI with a lesion label; NRRD), from
`../shared/reference/pyradiomics-cases/`. Each scan is extracted by `mmt_tune.radiomics.worker.extract_one`
(what one Ray task of `python -m mmt_tune.extract` runs) in one process with one thread (SimpleITK and BLAS
pinned), `fast` and `paper` alternating, ``--repeats`` times each after one warm-up call per settings file
(which builds the extractor); the table gives the minimum and median with the load average. The
figure a user needs: the time per scan, times scans (patients x sequences), divided by the workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy is imported: one BLAS thread
from _common import load_average, min_median, report  # noqa: E402

CASES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pyradiomics-cases"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (args.cases / "brain1_image.nrrd").is_file():
        print(f"error: {args.cases}: PyRadiomics' brain cases not found", file=sys.stderr)
        return 2
    import SimpleITK as sitk

    from mmt_tune.radiomics.settings import load_settings
    from mmt_tune.radiomics.worker import extract_one

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    before = load_average()
    lines = [
        f"One scan at a time, one process, one thread; `fast` and `paper` alternate, {args.repeats} runs each "
        "after a warm-up; seconds per scan.",
        "",
        "| case | voxels | lesion voxels | settings | features | min (s) | median (s) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    settings = {params: load_settings(params) for params in ("fast", "paper")}
    for case in ("brain1", "brain2"):
        image, mask = args.cases / f"{case}_image.nrrd", args.cases / f"{case}_label.nrrd"
        voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(image))).size
        lesion = int((sitk.GetArrayFromImage(sitk.ReadImage(str(mask))) > 0).sum())
        times: dict[str, list[float]] = {params: [] for params in settings}
        features: dict[str, int] = {}
        for run in range(args.repeats + 1):
            for params, chosen in settings.items():
                start = time.perf_counter()
                result = extract_one(str(image), str(mask), chosen.params, chosen.sha256, chosen.label)
                if run:  # the first round builds the extractors
                    times[params].append(time.perf_counter() - start)
                if "error" in result:
                    print(f"error: {case} {params}: {result['error']}", file=sys.stderr)
                    return 1
                features[params] = len(result["features"])
        for params in settings:
            fastest, median = min_median(times[params])
            lines.append(
                f"| {case} | {voxels} | {lesion} | `{params}` | {features[params]} | {fastest:.2f} | {median:.2f} |"
            )
            print(lines[-1], flush=True)
    lines += ["", f"Before: {before}; after: {load_average()}."]
    report("extract-clinical", "Extraction time per scan at clinical size", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
