"""Tune callbacks of a study: the trials table kept current, one line per failed trial, a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune
from tqdm.auto import tqdm

from mmt_tune.records import TRIALS_TABLE, TrialRecord, trials_table, write_tables

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


def first_line(error: BaseException | str) -> str:
    """The root cause of a trial's error in one line (Tune wraps it in its own exception types; a trial's
    error file holds the traceback, whose last line is the cause)."""
    if isinstance(error, str):
        lines = [line for line in error.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "unknown error"
    cause = error
    while getattr(cause, "cause", None) is not None or cause.__cause__ is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


class FailedTrials(tune.Callback):
    """One line on stderr per failed trial: its configuration and the first line of its error.

    Tune calls ``on_trial_error`` before it records the trial's error, so the line is printed at the next
    step of the run loop (or at the end), once the error can be read.
    """

    def __init__(self) -> None:
        self.pending: list[Trial] = []

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.pending.append(trial)

    def _flush(self, final: bool) -> None:
        waiting = []
        for trial in self.pending:
            try:
                error = trial.get_error()
            except Exception:  # the error file is not readable (yet)
                error = None
            if error is None and not final:
                waiting.append(trial)
                continue
            reason = first_line(error) if error is not None else "see the trial's error.txt"
            configuration = trial.config.get("configuration", "?")
            # through tqdm, so that a progress bar on the same stream is redrawn below the line, not broken
            tqdm.write(f"error: trial {trial.trial_id} ({configuration}) failed: {reason}", file=sys.stderr)
        self.pending = waiting

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.pending:
            self._flush(final=False)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._flush(final=True)

    def __getstate__(self) -> dict:
        return {"pending": []}


class StudyEstimate(tune.Callback):
    """One line, once the first ``slots`` trials of this run have ended: how long the rest will take at the
    rate so far (trials ended per minute of wall time, so the trials running at once are counted). The
    launcher passes at least the number of configurations as ``slots``: the searcher hands trials out
    round-robin, so by then every configuration has had one, and slow and fast models are both in the rate
    (after the first two trials of a 27-configuration study, both MMT-2M, the rate overestimated the rest
    threefold)."""

    def __init__(self, total: int, slots: int) -> None:
        self.total, self.slots = total, max(1, slots)
        self.start: float | None = None
        self.ended_before = 0
        self.said = False

    def setup(self, **info: Any) -> None:
        import time

        self.start = time.monotonic()

    def __getstate__(self) -> dict:
        return {"total": self.total, "slots": self.slots, "start": None, "ended_before": 0, "said": False}

    def _ended(self, trials: list[Trial], current: Trial) -> None:
        import time

        if self.said:
            return
        ended = len({id(t) for t in trials if t.status in ("TERMINATED", "ERROR")} | {id(current)})
        if self.start is None:  # a resumed run: count from here
            self.start, self.ended_before = time.monotonic(), ended - 1
        line = estimate_line(ended - self.ended_before, self.total - ended, time.monotonic() - self.start)
        if ended - self.ended_before >= self.slots and line:
            tqdm.write(line, file=sys.stderr)
            self.said = True

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ended(trials, trial)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ended(trials, trial)


def estimate_line(ended: int, remaining: int, seconds: float) -> str:
    """``estimate: ...`` for ``remaining`` trials at the rate of ``ended`` trials in ``seconds`` (empty when
    nothing remains)."""
    if remaining <= 0 or ended <= 0:
        return ""
    left = remaining * seconds / ended

    def span(s: float) -> str:
        return f"{s / 3600:.1f} h" if s >= 5400 else f"{max(1, round(s / 60))} min"

    return (
        f"estimate: about {span(left)} more for the other {remaining} trials (the first {ended} took "
        f"{span(seconds)}; trials of other configurations can take longer or shorter)"
    )
