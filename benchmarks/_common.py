"""Shared helpers for the benchmarks: machine description and recording results in RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """One line naming the machine the numbers were measured on."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}, {platform.system()}"


def timed(cmd: list[str], **kwargs) -> float:
    """Wall-clock seconds of a command line, start to exit (imports and process start-up included)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def record(section: str, markdown: str) -> None:
    """Replace the block between ``<!-- section:begin -->`` and ``<!-- section:end -->`` in RESULTS.md."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(RESULTS)


def report(section: str, title: str, lines: list[str], save: bool) -> None:
    """Print a result block (with the machine line) and, if ``save``, record it in RESULTS.md."""
    lines = [*lines, "", f"Machine: {machine()}."]
    print("\n".join(lines))
    if save:
        record(section, f"### {title}\n\n" + "\n".join(lines))


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def min_median(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return ordered[0], median


def radmlbench_parser(description: str):
    """The command line of the benchmarks on the radMLBench tables: ``--reference`` (the tables' folder),
    ``--seeds`` and ``--record``."""
    import argparse

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reference", type=Path, default=Path(__file__).resolve().parents[2] / "shared/reference/radmlbench"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--record", action="store_true")
    return parser
