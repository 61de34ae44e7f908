"""What a study is asked to do and what it gives back: :class:`StudyOptions`, :class:`StudyResult`, and
where its files go (:class:`Where`). Plain types, no Ray or torch: the entry, the launcher, nested CV and
the post-search steps all use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmt_tune.modalities import MODALITIES
from mmt_tune.records import best_trials


@dataclass(frozen=True)
class StudyOptions:
    """How to run a study (the command line's options, and :func:`run_study`'s keyword arguments)."""

    samples: int = 10  # trials per configuration
    epochs: int | None = None  # override the space's epochs
    folds: int | None = None  # override the folds (default 5)
    repeats: int | None = None  # repeated CV: k-fold splits from this many seeds (default 1)
    seed: int = 0  # folds, samplers, initialisation
    address: str | None = None  # an existing Ray cluster (default: start a local instance)
    storage: str | Path = "results"  # where Tune writes the experiment (a path or a URI)
    name: str | None = None  # the study's name (default: the space file's stem, else its name:)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    configurations: Sequence[str] | None = None  # run only these configurations of the space
    subsets: int | None = None  # largest set a rule without missing: expands to (None: by the sequences)
    checkpoint_every: int = 10  # epochs between a trial's checkpoints
    report_every: int = 10  # epochs between a trial's reports to Tune (every epoch still reaches W&B)
    compile: str | None = None  # a torch.compile backend for every deep trial's training step
    resume: bool = False  # continue the interrupted experiment <storage>/<name>
    wandb: str = "offline"  # off, offline or online
    wandb_project: str = "mmt-tune"
    asha: bool = False  # per-configuration ASHA early stopping
    verbose: int = 1  # Tune's: 0 silent, 1 status tables
    progress: bool = False  # one progress bar of finished trials instead
    phantom: bool = (
        False  # the features are the phantom cohort's (synthetic): data.json and the report say so
    )
    # A held-out table: after the search each configuration's best trial is refitted on all rows and scored
    # on it (test.csv); the search never sees it.
    test_features: str | Path | None = None
    # After the search: the full-modality MFN-VAE's folds scored with every modality subset (robustness.csv),
    # and with modality_dropout > 0 the same configuration retrained with modality dropout beside it.
    robustness: bool = True
    modality_dropout: float = 0.0
    # Nested CV: a study per outer fold on its training rows, the inner-best trials scored on its test rows
    outer_folds: int | None = None
    # Trials per pack: a Tune trial trains up to this many of a configuration's trials as one model
    pack_trials: int = 1


@dataclass
class StudyResult:
    experiment: Path
    trials: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)  # configuration -> first error of its failed trials
    test: pd.DataFrame | None = None  # --test-features: each configuration's held-out metrics (test.csv)
    robustness: pd.DataFrame | None = None  # robustness.csv: metrics per test-time modality subset
    nested: pd.DataFrame | None = None  # --outer-folds: nested.csv (configuration x outer fold scores)

    def failed_configurations(self) -> list[str]:
        """Configurations of which no trial completed."""
        ok = self.trials[self.trials["status"] == "ok"]
        done = set(ok["model"] + "/" + ok["present"])
        every = set(self.trials["model"] + "/" + self.trials["present"])
        return sorted(every - done)

    def best(self, metric: str = "auc") -> pd.DataFrame:
        """Best trial of each configuration (:func:`mmt_tune.records.best_trials`)."""
        return best_trials(self.trials, metric)


@dataclass(frozen=True)
class Where:
    """Where a study's files go: Tune's experiment, and our tables (local, even for a cloud experiment)."""

    name: str
    storage: str | Path
    experiment: str
    tables: Path

    @property
    def remote(self) -> bool:
        return "://" in str(self.storage)


@dataclass(frozen=True)
class TrialSettings:
    """Constants of a study's run, the same for every trial (not hyperparameters)."""

    seed: int = 0  # folds, SMOTE, initialisation
    device: str = "cpu"
    compile: str | None = None  # a torch.compile backend for the training step (--compile)
    checkpoint_every: int = 10  # epochs between checkpoints a resumed trial continues from
    report_every: int = 10  # epochs between reports (checkpoints and the last epoch report too)
    modalities: tuple[str, ...] = MODALITIES  # the study's (its feature table's)
