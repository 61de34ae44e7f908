"""One Optuna study per modality configuration, all inside one Ray Tune run.

Ray's ``OptunaSearch`` optimises one search space, and Ray rejects ``tune.grid_search`` with it, so a study
over several configurations cannot be a grid over a configuration key. :class:`PerConfigurationSearch`
composes one ``OptunaSearch`` per configuration (each with its own TPE sampler, seeded from the study seed
and the configuration's position) and hands out trials round-robin, so every configuration gets the same
budget and its own sampler state. Completed trials are routed back to the study that proposed them.
``save``/``restore`` pickle the whole searcher, studies included, so a resumed Tune run continues every
configuration's optimisation where it stopped.

With ``storage`` (the launcher passes ``<study folder>/optuna.journal``), every configuration's study also
lives in Optuna's own journal storage under its configuration's name (``mmt1m/T1WI``), so Optuna's tools open
it: ``optuna.load_study(study_name=..., storage=open_storage(path))``, ``optuna-dashboard optuna.journal``,
``optuna.visualization``, ``optuna.importance``. The journal is written as trials are asked and told; on
resume, a trial the interrupted run had asked but Tune never recorded is marked failed, so the journal
holds exactly the trials of the trials table (plus those failures).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from mmt_tune.spaces import SearchSpace

if TYPE_CHECKING:
    from optuna.storages import JournalStorage
    from ray.tune.schedulers import FIFOScheduler


class PickledState:
    """``save``/``restore`` of the whole object (Optuna studies, ASHA brackets) for Tune's experiment state."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


def open_storage(path: str | Path) -> JournalStorage:
    """Optuna's journal storage in ``path`` (a study folder's ``optuna.journal``)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


class PerConfigurationSearch(PickledState, Searcher):
    """Every configuration of ``space`` its own Optuna TPE study with ``samples_per_configuration`` trials."""

    def __init__(
        self,
        space: SearchSpace,
        samples_per_configuration: int,
        metric: str = "auc",
        mode: str = "max",
        seed: int = 0,
        storage: str | Path | None = None,
        pack: int = 1,
        slots: int | None = None,
    ):
        import optuna
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        # One "A new study created in memory" line per configuration says nothing a user needs.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        super().__init__(metric=metric, mode=mode)
        self.budget = int(samples_per_configuration)
        self.order = [c.key for c in space.configurations]
        # A configuration with nothing searched (every option fixed) has one trial to run, not N identical
        # ones, and no Optuna study (Ray's OptunaSearch refuses an empty space).
        self.budgets = {c.key: self.budget if c.parameters else 1 for c in space.configurations}
        # --pack-trials: a Tune trial trains up to ``pack`` of a configuration's trials as one model, when
        # they can differ only in per-slice options (a deep model searching lr and loss weights).
        # Packs are sized so that they never leave a trial slot idle that single trials would fill
        # (:func:`fitted_pack`; ``slots``: the trials that run at once).
        packable = [c.key for c in space.configurations if _packable(c)]
        self.requested_pack, self.slots = int(pack), slots
        if slots is not None and packable:
            pack = fitted_pack(int(pack), [self.budgets[k] for k in packable], slots)
        self.pack = {c.key: int(pack) if c.key in packable else 1 for c in space.configurations}
        self.fitted_pack = int(pack) if packable else None  # None: no configuration can be packed
        self.trial_members: dict[str, int] = {}
        self.base = {
            c.key: {"configuration": c.key, "model": c.model, "present": list(c.present), **c.fixed}
            for c in space.configurations
        }
        self.storage = str(storage) if storage is not None else None
        journal = open_storage(storage) if storage is not None else None
        self.studies = {
            c.key: OptunaSearch(
                space=c.optuna_distributions(),
                metric=metric,
                mode=mode,
                # With packs, B trials are asked before any is told: the constant liar scores the pending
                # ones as bad, so TPE spreads a pack out instead of proposing B near-copies.
                sampler=TPESampler(seed=seed * 1000 + i, constant_liar=pack > 1),
                study_name=c.key,
                storage=journal,
            )
            if c.parameters
            else None
            for i, c in enumerate(space.configurations)
        }
        self.proposed = {key: 0 for key in self.order}
        self.trial_configuration: dict[str, str] = {}

    @property
    def total_trials(self) -> int:
        return sum(-(-self.budgets[k] // self.pack[k]) for k in self.order)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The metric and mode are fixed at construction (they also configure every Optuna study).
        return (metric in (None, self._metric)) and (mode in (None, self._mode))

    def suggest(self, trial_id: str) -> dict | str | None:
        if trial_id in self.trial_configuration:  # asked again for the same trial: same answer
            key = self.trial_configuration[trial_id]
            return self._config(key, trial_id, self.trial_members.get(trial_id, 1))
        open_keys = [k for k in self.order if self.proposed[k] < self.budgets[k]]
        if not open_keys:
            return Searcher.FINISHED
        key = min(open_keys, key=lambda k: (self.proposed[k], self.order.index(k)))  # round-robin
        members = min(self.pack[key], self.budgets[key] - self.proposed[key])
        self.proposed[key] += members
        self.trial_configuration[trial_id] = key
        if members > 1:
            self.trial_members[trial_id] = members
        return self._config(key, trial_id, members)

    def _config(self, key: str, trial_id: str, members: int) -> dict:
        """A trial's config; a pack's members' parameters under ``pack`` (asked as ``<trial>/<j>``)."""
        if members == 1:
            return {**self.base[key], **self._suggest(key, trial_id)}
        return {**self.base[key], "pack": [self._suggest(key, f"{trial_id}/{j}") for j in range(members)]}

    def _suggest(self, key: str, trial_id: str) -> dict:
        search = self.studies[key]
        return search.suggest(trial_id) if search is not None else {}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # TPE uses final values only; intermediate results matter to the scheduler (ASHA), not the sampler.
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        key = self.trial_configuration.get(trial_id)
        if key is None or self.studies[key] is None:
            return
        members = self.trial_members.get(trial_id, 1)
        if members == 1:
            self.studies[key].on_trial_complete(trial_id, result=result, error=error)
            return
        # A pack: every member is its own Optuna trial, told its own mean AUC.
        scores = json.loads(result["members"]) if result and not error and "members" in result else []
        for j in range(members):
            member = {self.metric: scores[j][self.metric]} if j < len(scores) else None
            self.studies[key].on_trial_complete(f"{trial_id}/{j}", result=member, error=member is None)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """In a stored study, mark failed the running trials this searcher does not know: asked by an
        interrupted run after Tune last saved its state, they will never be told."""
        from optuna.trial import TrialState

        from mmt_tune._internals import asked_trial_numbers, optuna_study

        if getattr(self, "storage", None) is None:
            return
        for search in self.studies.values():
            if search is None:
                continue
            study = optuna_study(search)
            known = asked_trial_numbers(search)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if trial.number not in known:
                    study.tell(trial.number, state=TrialState.FAIL)


#: How much later than single trials packs may finish before the packing gain (>= 1.1x) is counted.
SLACK = 1.05


def fitted_pack(requested: int, budgets: list[int], slots: int) -> int:
    """The largest pack size up to ``requested`` that costs no parallelism.

    The packs of every packable configuration (``budgets``: its trials), handed out round-robin as the
    searcher does and run ``slots`` at a time, must finish within :data:`SLACK` of the single trials' time
    even if a pack of B trained no faster than B trials one after another (:func:`makespan`); the packing
    gain is larger than that slack (per trial, a pack of 2 trains about 1.1x and one of 4 about 1.3x as fast
    as a single trial on a CPU: benchmarks/RESULTS.md). 1 always qualifies.
    One configuration of 8 trials on 2 slots gets packs of 4 (two packs, both slots busy), not one pack of 8
    on one slot while the other idles."""
    single = makespan(budgets, 1, slots)
    for size in range(max(1, requested), 1, -1):
        if makespan(budgets, size, slots) <= SLACK * single:
            return size
    return 1


def makespan(budgets: list[int], size: int, slots: int) -> int:
    """Trial-times until the last pack ends: packs of up to ``size`` trials (the last of a configuration
    smaller), round-robin over configurations, each started on the first free slot and lasting one
    trial-time per member."""
    import heapq

    left = list(budgets)
    free = [0] * max(1, slots)
    end = 0
    while any(left):
        for i, n in enumerate(left):
            if n:
                members = min(size, n)
                left[i] -= members
                start = heapq.heappop(free)
                end = max(end, start + members)
                heapq.heappush(free, start + members)
    return end


def _packable(configuration) -> bool:
    """Deep, and searching only options packed trials may differ in."""
    from mmt_tune import models
    from mmt_tune.config import per_slice

    deep = configuration.model in models.names() and not models.get(configuration.model).baseline
    return deep and bool(configuration.parameters) and all(per_slice(k) for k in configuration.parameters)


def per_configuration_asha(
    max_t: int, grace_period: int, reduction_factor: float = 3.0, metric: str = "auc", mode: str = "max"
) -> FIFOScheduler:
    """ASHA early stopping within each configuration: one ``ASHAScheduler`` per configuration.

    Ray's ASHA compares every trial of a run at its rungs; here each configuration is its own problem (an
    MMT-1M trial on FLAIR should not be stopped because MMT-2M trials on T1WI+DWI score higher), so trials
    are routed by ``config["configuration"]``. Which trial starts next is plain FIFO.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    class PerConfigurationASHA(PickledState, FIFOScheduler):
        def __init__(self) -> None:
            super().__init__()
            self._options = dict(
                time_attr="training_iteration",
                max_t=max_t,
                grace_period=grace_period,
                reduction_factor=reduction_factor,
                metric=metric,
                mode=mode,
            )
            self._schedulers: dict[str, ASHAScheduler] = {}

        def _for(self, trial):
            key = trial.config.get("configuration", "")
            if key not in self._schedulers:
                self._schedulers[key] = ASHAScheduler(**self._options)
            return self._schedulers[key]

        def set_search_properties(self, metric, mode, **spec) -> bool:
            return metric in (None, self._options["metric"]) and mode in (None, self._options["mode"])

        def on_trial_add(self, tune_controller, trial):
            self._for(trial).on_trial_add(tune_controller, trial)

        def on_trial_result(self, tune_controller, trial, result):
            return self._for(trial).on_trial_result(tune_controller, trial, result)

        def on_trial_complete(self, tune_controller, trial, result):
            self._for(trial).on_trial_complete(tune_controller, trial, result)

        def on_trial_remove(self, tune_controller, trial):
            self._for(trial).on_trial_remove(tune_controller, trial)

        def on_trial_error(self, tune_controller, trial):
            self._for(trial).on_trial_remove(tune_controller, trial)

        def debug_string(self) -> str:
            from mmt_tune._internals import asha_stopped

            stopped = sum(asha_stopped(s) for s in self._schedulers.values())
            return f"per-configuration ASHA: {stopped} trial(s) stopped early"

    return PerConfigurationASHA()


def study_asha(study: SearchSpace, report_every: int) -> FIFOScheduler:
    """Per-configuration ASHA over a study's trial reports: one per ``report_every`` epochs (and the final
    one); grace period a tenth of them."""
    epochs = max(int(c.fixed.get("epochs", 200)) for c in study.configurations)
    reports = -(-epochs // max(1, report_every))
    return per_configuration_asha(max_t=reports + 1, grace_period=max(1, reports // 10))
