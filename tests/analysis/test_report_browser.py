"""The report as a reader sees it: index.html opened in a real (headless) browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from test_importance import KEY, PAPER_MMT2M, study_of

    from mmt_tune.analysis.importance.types import ImportanceOptions
    from mmt_tune.analysis.report import write_report
    from mmt_tune.analysis.synthetic import synthetic_trials

    space = {KEY: PAPER_MMT2M}
    study = study_of(synthetic_trials(space, 30, seed=1), space)
    out = tmp_path_factory.mktemp("report") / "report"
    return write_report(study, out, options=ImportanceOptions(seeds=1, jobs=1), progress=False).index


def test_every_image_and_link_of_the_index_resolves(report):
    from matplotlib import image

    html = report.read_text()
    targets = re.findall(r'(?:src|href)="([^"#]+)"', html)
    images = re.findall(r'src="([^"]+)"', html)
    assert len(images) >= 3 and len(targets) > len(images)
    for target in targets:
        assert "://" not in target and not target.startswith("/"), f"{target}: the report must be relocatable"
        assert (report.parent / target).is_file(), f"{target}: broken link"
    for source in images:
        assert image.imread(report.parent / source).size > 0


# .ci/run installs chromium-headless-shell, so CI always runs this; a developer machine without a headless
# Chromium skips it with the install command rather than failing on a missing system package.
@pytest.mark.skipif(
    BROWSER is None, reason="no headless Chromium (Debian: apt-get install chromium-headless-shell)"
)
def test_the_report_renders_in_a_headless_browser(report, tmp_path):
    from matplotlib import image

    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*command, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert dom.count("<img") == report.read_text().count("<img") >= 3
    assert "Table 2" in dom and "Table 3" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*command, "--window-size=1280,3000", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1280)
    ink = (pixels.mean(axis=-1) < 0.9).mean()  # share of non-white pixels: text, tables, figures
    assert ink > 0.02, f"the page rendered almost blank ({ink:.3%} ink)"
    # The first figure (the configuration bars, drawn in the models' colours) is on the page.
    red = (pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)
    assert red.mean() > 0.005 and np.isfinite(pixels).all()
