"""``mmt-tune COMMAND ...``: every command of the project under one console script.

Each command is also a module (``python -m mmt_tune.run``, ``python -m analysis.report``, ...); this only
dispatches to that module's ``main``. ``mmt-tune --version`` and ``mmt-tune COMMAND --version`` print the
installed version.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from mmt_tune import __version__
from mmt_tune.errors import InputError

#: command -> (module whose ``main(argv)`` runs it, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mmt_tune.data.synth", "generate a phantom cohort (volumes, masks, manifest)"),
    "scan": ("mmt_tune.data.scan", "a manifest from a folder of images and masks named by a pattern"),
    "extract": ("mmt_tune.radiomics.cli", "PyRadiomics features of a manifest's scans -> feature table"),
    "convert": ("mmt_tune.data.convert", "a radiomics table computed elsewhere -> feature table"),
    "train": ("mmt_tune.train", "cross-validate one configuration"),
    "run": ("mmt_tune.run", "a study: every configuration of a search space (Ray Tune + Optuna)"),
    "fit": ("mmt_tune.fit", "refit a study's best configurations on all rows -> a bundle"),
    "predict": ("mmt_tune.predict", "score new patients with a bundle (any modality subset)"),
    "report": ("mmt_tune.analysis.report", "Table 2, Table 3, comparisons and figures of a study"),
    "importance": ("mmt_tune.analysis.importance.cli", "hyperparameter importance (Table 3) alone"),
    "metrics": ("mmt_tune.analysis.metrics", "cross-validated metrics (Table 2) and comparisons alone"),
    "dashboard": ("mmt_tune.dashboard", "the study's W&B workspace"),
    "demo": ("mmt_tune.demo", "the README demo on the phantom cohort"),
}


#: ``python -m`` forms that are not the module in :data:`COMMANDS` (the analysis keeps its short names).
PYTHON_M = {
    "extract": "mmt_tune.extract",
    "report": "analysis.report",
    "importance": "analysis.importance",
    "metrics": "analysis.metrics",
}

#: How the running command was invoked through the console script (``mmt-tune scan``), so that its usage and
#: error lines speak the user's dialect; None under ``python -m``.
INVOKED_AS: str | None = None


def command(name: str) -> str:
    """How to run another command in the dialect this one was run in: ``mmt-tune report`` after
    ``mmt-tune run``, ``python -m analysis.report`` after ``python -m mmt_tune.run``."""
    if INVOKED_AS is not None:
        return f"mmt-tune {name}"
    return f"python -m {PYTHON_M.get(name, COMMANDS[name][0])}"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where it says something: not None, not a flag's False, and not where the help
    already names it."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if action.default is None or isinstance(action.default, bool) or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def add_quiet(parser: argparse.ArgumentParser, what: str = "no progress bar") -> None:
    """``--no-progress`` (or ``--quiet``), the same on every command that shows progress."""
    parser.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true", help=what)


def add_verbose(parser: argparse.ArgumentParser, what: str) -> None:
    """``--verbose``, the same on every command that starts Ray: Ray's (and Tune's) own logs and warnings,
    which are quiet otherwise."""
    parser.add_argument("--verbose", action="store_true", help=what)


def add_version(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--version`` on a command's parser (and, under ``mmt-tune COMMAND``, that as its name in usage and
    error lines)."""
    if INVOKED_AS is not None:
        parser.prog = INVOKED_AS
    parser.add_argument("--version", action="version", version=f"mmt-tune {__version__}")
    return parser


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: mmt-tune COMMAND [options]   (mmt-tune {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "mmt-tune COMMAND --help (or mmt-tune help COMMAND) shows a command's options."]
    return "\n".join(lines)


def parse_present(text: str) -> tuple[str, ...]:
    parts = tuple(p for p in text.replace(",", "+").split("+") if p)
    return parts


def read_config(path: Path | None) -> dict:
    """A ``--config`` YAML of options (empty without one); one :class:`InputError` line when it is missing,
    not YAML or not a mapping."""
    from mmt_tune._io import parse_yaml

    if path is None:
        return {}
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    options = parse_yaml(path.read_text(), str(path)) or {}
    if not isinstance(options, dict):
        raise InputError(f"{path}: expected a mapping of option: value")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "help":  # mmt-tune help run: run's --help
        return main([*argv[1:2], "--help"]) if len(argv) > 1 else (print(usage()) or 0)
    if argv[0] == "--version":
        print(f"mmt-tune {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r} (known: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    global INVOKED_AS
    INVOKED_AS = f"mmt-tune {argv[0]}"
    try:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    finally:
        INVOKED_AS = None


if __name__ == "__main__":
    sys.exit(main())
