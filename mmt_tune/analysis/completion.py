"""Whether a study ran what it planned: trials per configuration against its budget (``--num-samples``).

A study interrupted (and not resumed), or whose trials failed, still gives a full Table 2, one best trial per
configuration, from fewer trials than planned. :func:`completion_notes` says so, naming the configurations
short of their budget, and counts the trials ASHA stopped early (they count as run, with fewer epochs).
"""

from __future__ import annotations

import pandas as pd


def completion(trials: pd.DataFrame, planned: int | None) -> pd.DataFrame:
    """Per configuration: trials completed (``ok``), stopped early, failed, and the planned number."""
    per = trials.drop_duplicates(["model", "present", "trial_id"])
    counts = per.pivot_table(
        index=["model", "present"], columns="status", values="trial_id", aggfunc="count", fill_value=0
    )
    frame = pd.DataFrame(
        {s: counts[s] if s in counts.columns else 0 for s in ("ok", "stopped", "error")}, index=counts.index
    ).reset_index()
    frame["planned"] = planned
    return frame


def completion_notes(
    trials: pd.DataFrame, planned: int | None, configurations: list[str] | None
) -> list[str]:
    """A banner when a configuration ran fewer trials than planned (or never ran), and a count of the
    trials ASHA stopped early."""
    frame = completion(trials, planned)
    notes = []
    if planned:
        ran = {
            f"{m}/{p}": int(ok + stopped)
            for m, p, ok, stopped in frame[["model", "present", "ok", "stopped"]].itertuples(index=False)
        }
        keys = list(configurations or ran)
        short = [f"{k} {ran.get(k, 0)}/{planned}" for k in keys if ran.get(k, 0) < planned]
        if short:
            done = sum(min(ran.get(k, 0), planned) for k in keys)
            notes.append(
                f"UNFINISHED STUDY: {done} of {len(keys) * planned} planned trials completed; configurations short "
                f"of their budget (completed/planned): {'; '.join(short)}. Their best trials come from fewer "
                "trials than planned: resume the study (--resume) before reporting it"
            )
    stopped = int(frame["stopped"].sum())
    if stopped:
        notes.append(f"{stopped} trials were stopped early by ASHA (fewer epochs); they count as completed")
    return notes
