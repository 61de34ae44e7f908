"""Tune callbacks of a study: the trials table kept current, and a one-line progress bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from mmt_tune.study.records import TRIALS_TABLE, TrialRecord, trials_table, write_tables

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


class RefreshTrialsTable(tune.Callback):
    """Rewrites the trials table each time a trial ends, so it is current mid-study."""

    def __init__(self, study: str, folder_of: Callable[[], Path]) -> None:
        self.study = study
        self.folder_of = folder_of

    def _refresh(self, trials, current, failed: bool) -> None:
        # Tune calls these hooks before it marks ``current`` as ended, so it is added explicitly.
        ended = [t for t in trials if t.status in ("TERMINATED", "ERROR") and t is not current]
        records = [
            TrialRecord(t.config, t.last_result or {}, t.status == "ERROR", Path(t.local_path)) for t in ended
        ]
        records.append(
            TrialRecord(current.config, current.last_result or {}, failed, Path(current.local_path))
        )
        write_tables({TRIALS_TABLE: trials_table(records, self.study)}, self.folder_of(), csv=True)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._refresh(trials, trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._refresh(trials, trial, failed=True)


class TrialProgress(tune.Callback):
    """Finished trials as one tqdm bar (set from Tune's own trial list, so a resumed study starts at the
    trials it already has)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = None  # created when the run starts: Tune pickles its callbacks with the experiment

    def _open(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc="trials", unit="trial")

    def setup(self, **info: Any) -> None:
        self._open()

    def _update(self, trials, current) -> None:
        if self.bar is None:
            self._open()
        ended = {id(t) for t in trials if t.status in ("TERMINATED", "ERROR")} | {id(current)}
        self.bar.n = len(ended)
        self.bar.refresh()

    def __getstate__(self) -> dict:
        return {"total": self.total, "bar": None}

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._update(trials, trial)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._update(trials, trial)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self.bar is not None:
            self.bar.close()
