"""How long one scan takes at clinical size: PyRadiomics' own brain MRI test cases, `paper` and `fast` settings.

    python benchmarks/extract_clinical.py [--record]

The cases are PyRadiomics' `brain1` and `brain2` (T1-weighted brain MRI with a lesion label; NRRD), from
`../shared/reference/pyradiomics-cases/`. Each scan is extracted once per settings file in this process, one
worker, as one Ray task of `python -m mmt_tune.extract` would do (`mmt_tune.radiomics.worker.extract_one`);
the first call of each settings file also builds the extractor, so the table gives both runs' times. The
figure a user needs: the time per scan, times scans (patients x sequences), divided by the workers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, report  # noqa: E402

CASES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pyradiomics-cases"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    parser.add_argument("--cases", type=Path, default=CASES)
    args = parser.parse_args()
    if not (args.cases / "brain1_image.nrrd").is_file():
        print(f"error: {args.cases}: PyRadiomics' brain cases not found", file=sys.stderr)
        return 2
    import SimpleITK as sitk

    from mmt_tune.radiomics.settings import load_settings
    from mmt_tune.radiomics.worker import extract_one

    before = load_average()
    lines = [
        "One scan at a time, one worker; seconds per scan (first and second run of each settings file).",
        "",
        "| case | voxels | lesion voxels | settings | features | first run (s) | second run (s) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for case in ("brain1", "brain2"):
        image, mask = args.cases / f"{case}_image.nrrd", args.cases / f"{case}_label.nrrd"
        voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(image))).size
        lesion = int((sitk.GetArrayFromImage(sitk.ReadImage(str(mask))) > 0).sum())
        for params in ("fast", "paper"):
            settings = load_settings(params)
            times, result = [], {}
            for _ in range(2):
                start = time.perf_counter()
                result = extract_one(str(image), str(mask), settings.params, settings.sha256, settings.label)
                times.append(time.perf_counter() - start)
            if "error" in result:
                print(f"error: {case} {params}: {result['error']}", file=sys.stderr)
                return 1
            lines.append(
                f"| {case} | {voxels} | {lesion} | `{params}` | {len(result['features'])} | {times[0]:.1f} | "
                f"{times[1]:.1f} |"
            )
            print(lines[-1], flush=True)
    lines += ["", f"Before: {before}; after: {load_average()}."]
    report("extract-clinical", "Extraction time per scan at clinical size", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
