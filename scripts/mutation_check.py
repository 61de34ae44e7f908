"""Plant known bugs one at a time and check that the test suite catches each.

Each mutant replaces one snippet in one module (the snippet must occur exactly once, so a refactoring that
moves it makes the script fail loudly instead of testing nothing), runs the tests named for it, and restores
the file, whatever happens. A mutant is *caught* when those tests fail, *survived* when they pass.

    .venv/bin/python scripts/mutation_check.py            # the curated list, targeted tests (a few minutes)
    .venv/bin/python scripts/mutation_check.py --full     # each mutant against the whole fast suite (slow)
    .venv/bin/python scripts/mutation_check.py --only 3,7

Exit code 1 when any mutant survives. Not run in CI (it edits the working tree while it runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUARANTEES = "tests/test_guarantees.py"


@dataclass(frozen=True)
class Mutant:
    what: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant(
        "Tune minimises the objective (mode='min')",
        "mmt_tune/study/launcher.py",
        'metric="auc",\n            mode="max",',
        'metric="auc",\n            mode="min",',
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "the trial's objective is fold 0's AUC, not the fold mean",
        "mmt_tune/study/trial_io.py",
        "        final[metric] = mean\n",
        "        final[metric] = float(result.folds[metric].iloc[0])\n",
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "the per-epoch AUC (ASHA's signal) counts padded rows",
        "mmt_tune/study/trial_io.py",
        "aucs = slice_auc(info.val_probabilities, info.val_labels, real)",
        "aucs = slice_auc(info.val_probabilities, info.val_labels, torch.ones_like(real))",
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "PyRadiomics settings left out of the cache key the extractor builds",
        "mmt_tune/radiomics/extract.py",
        "key = cache.key(digest(image), digest(mask), settings.sha256, settings.label, version)",
        'key = cache.key(digest(image), digest(mask), "settings", settings.label, version)',
        ("tests/radiomics/test_extract.py", "-k", "every_setting"),
    ),
    Mutant(
        "extraction ignores the settings' label value",
        "mmt_tune/radiomics/extract.py",
        "                    settings.sha256,\n                    settings.label,\n",
        "                    settings.sha256,\n                    1,\n",
        ("tests/radiomics/test_extract.py", "-k", "label_value"),
    ),
    Mutant(
        "folds seeded per trial (from its lr) instead of per study",
        "mmt_tune/training/crossval.py",
        "    return columns, make_repeated_folds(table, config.folds, config.seed, config.repeats)",
        "    return columns, make_repeated_folds(\n"
        "        table, config.folds, config.seed + int(config.lr * 1e7) % 97, config.repeats\n"
        "    )",
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "plain KFold instead of stratified folds",
        "mmt_tune/training/preprocess.py",
        "splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)",
        "splits = __import__('sklearn.model_selection').model_selection.KFold(n_splits=n_folds, shuffle=True, "
        "random_state=seed).split(np.zeros(len(y)), y)",
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "the best trial is the one with the lowest mean objective",
        "mmt_tune/records.py",
        "ascending=[False, True, True]",
        "ascending=[True, True, True]",
        ("tests/study/test_objective.py",),
    ),
    Mutant(
        "a probability of exactly 0.5 predicts the negative class",
        "mmt_tune/metrics.py",
        "predicted = (np.asarray(y_score) >= threshold).astype(int)",
        "predicted = (np.asarray(y_score) > threshold).astype(int)",
        ("tests/study/test_objective.py", "tests/test_metrics.py"),
    ),
    Mutant(
        "MMT's Hadamard product through Tensor.prod (couples packed folds)",
        "mmt_tune/models/mmt.py",
        "            k_all = k_mod[..., :1, :]\n            for j in range(1, n_mod):\n"
        "                k_all = k_all * k_mod[..., j : j + 1, :]\n",
        "            k_all = k_mod.prod(dim=-2, keepdim=True)\n",
        ("tests/models/test_models.py", "-k", "zeros"),
    ),
    Mutant(
        "MFN-VAE's KL summed over latent dimensions (posterior collapse)",
        "mmt_tune/models/losses.py",
        'out["logvar"].exp()).mean(-1)',
        'out["logvar"].exp()).sum(-1)',
        ("tests/training/test_crossval.py", "-k", "collapse"),
    ),
    Mutant(
        "early stopping watches the validation loss (reconstructing missing modalities)",
        "mmt_tune/training/trainer.py",
        'progress.early_stop(epoch, monitor_terms["classification"], self.optimizer.flat)',
        "progress.early_stop(epoch, val_losses[:, -1], self.optimizer.flat)",
        ("tests/training/test_crossval.py", "-k", "early_stopping"),
    ),
    Mutant(
        "truncated NIfTI files are not checked",
        "mmt_tune/radiomics/worker.py",
        "        short = truncated(path)\n",
        "        short = None\n",
        ("tests/radiomics/test_extract.py", "-k", "per_case"),
    ),
    Mutant(
        "W&B records the host name",
        "mmt_tune/study/tracking.py",
        "        host=MASKED,\n",
        "",
        ("tests/study/test_objective.py", "-k", "wandb"),
    ),
    Mutant(
        "files keep mkstemp's 0600",
        "mmt_tune/_io.py",
        "        os.chmod(tmp_path, 0o666 & ~current_umask())\n",
        "",
        ("tests/data/test_table.py", "-k", "umask"),
    ),
    Mutant(
        "each deep configuration is compared with the worse baseline",
        "mmt_tune/analysis/comparisons.py",
        'ascending=[False, True], kind="stable"',
        'ascending=[True, True], kind="stable"',
        ("tests/analysis/test_table2.py", "-k", "baselines"),
    ),
    Mutant(
        "the corrected resampled t forgets the training-set overlap (plain t)",
        "mmt_tune/stats.py",
        "se = np.sqrt((1.0 / len(x) + test_fraction) * x.var(ddof=1))",
        "se = np.sqrt((1.0 / len(x)) * x.var(ddof=1))",
        ("tests/test_stats.py", "tests/analysis/test_table2.py"),
    ),
    Mutant(
        "Holm without the running maximum (adjusted p-values can decrease)",
        "mmt_tune/stats.py",
        "running = max(running, min(1.0, (len(order) - rank) * p[i]))",
        "running = min(1.0, (len(order) - rank) * p[i])",
        ("tests/test_stats.py",),
    ),
    Mutant(
        "predict prefers the subset-capable model over the one trained for exactly the patient's sequences",
        "mmt_tune/deploy/routing.py",
        "    if exact:\n        return best(exact), available\n",
        "    if exact and False:\n        return best(exact), available\n",
        ("tests/deploy/test_bundle.py",),
    ),
    Mutant(
        "a fold's probabilities saved by the bundle lose their fitted scale",
        "mmt_tune/training/preprocess.py",
        "return np.asarray((values - self.mean) / self.scale, dtype=np.float32)",
        "return np.asarray(values - self.mean, dtype=np.float32)",
        ("tests/deploy/test_bundle.py",),
    ),
    Mutant(
        "a replayed step's noise window starts one number late (other dropout masks than the plain path)",
        "mmt_tune/models/blocks.py",
        "        self.cursor = 0\n\n    def end_step",
        "        self.cursor = 1 if self.window.shape[1] else 0\n\n    def end_step",
        (
            "tests/models/test_models.py::test_step_windows_replay_the_plain_streams_across_refills_at_fixed_addresses",
        ),
    ),
    Mutant(
        "a host sync inside the training step (the step cannot be captured as one graph)",
        "mmt_tune/training/trainer.py",
        "        terms = loss_terms(out, y, {m: batch_x[m] for m in targets}, rows, feature_mask)\n        return",
        "        terms = loss_terms(out, y, {m: batch_x[m] for m in targets}, rows, feature_mask)\n"
        "        if float(rows.sum()) < 0:\n            rows = rows * 0\n        return",
        (
            "tests/training/test_trial_packs.py::test_the_training_step_is_captured_as_one_graph_with_the_same_numbers",
        ),
    ),
    Mutant(
        "the fold cache ignores the preprocessing settings (a trial searching k gets another k's folds)",
        "mmt_tune/training/fold_cache.py",
        "        repr(config.preprocess),\n",
        "",
        (
            "tests/training/test_crossval.py::test_trials_with_the_same_preprocessing_share_the_fitted_folds_read_only",
        ),
    ),
    Mutant(
        "reports skip the epochs between them in W&B (only reported epochs logged)",
        "mmt_tune/study/trainable.py",
        "            if self.run is not None:\n                self.run.log(metrics, step=logged)",
        "            if self.run is not None and logged == self.pending[-1][0]:\n                self.run.log(metrics, step=logged)",
        (
            "tests/study/test_run.py::test_report_every_n_epochs_reports_to_tune_every_n_and_still_logs_every_epoch_to_wandb",
        ),
    ),
    # ---- the guarantees the reported numbers rest on (tests/test_guarantees.py), one class of bug each
    Mutant(
        "preprocessing without SMOTE fitted on the fold's training and validation rows",
        "mmt_tune/training/preprocess.py",
        "        Z_train, y_res = pipeline.fit(X_train, y_train).transform(X_train), y_train\n",
        "        pipeline.fit(pd.concat([X_train, X_val]), np.concatenate([y_train, y_val]))\n"
        "        Z_train, y_res = pipeline.transform(X_train), y_train\n",
        (GUARANTEES, "-k", "preprocessing_is_fitted or fitted_on_its_training"),
    ),
    Mutant(
        "preprocessing with SMOTE fitted (and resampled) on training and validation rows",
        "mmt_tune/training/preprocess.py",
        "        Z_train, y_res = pipeline.fit_resample(X_train, y_train)\n",
        "        Z_train, y_res = pipeline.fit_resample(pd.concat([X_train, X_val]), np.concatenate([y_train, y_val]))\n",
        (GUARANTEES, "-k", "preprocessing_is_fitted or fitted_on_its_training"),
    ),
    Mutant(
        "the imputation medians taken from the validation rows' values where they have any",
        "mmt_tune/training/preprocess.py",
        "    Z_val = features.transform(X_val)\n",
        "    features.named_transformers_[next(iter(modality_columns))].named_steps['impute'].fit(\n"
        "        X_val[modality_columns[next(iter(modality_columns))]]\n"
        "    )\n"
        "    Z_val = features.transform(X_val)\n",
        (GUARANTEES, "-k", "preprocessing_is_fitted"),
    ),
    Mutant(
        "cross-validation folds fitted on their training and validation rows (the fold cache's fit)",
        "mmt_tune/training/fold_cache.py",
        "                train,\n                val,\n                config.preprocess,",
        "                np.union1d(train, val),\n                val,\n                config.preprocess,",
        (GUARANTEES, "-k", "cross_validation_fits"),
    ),
    Mutant(
        "the fold cache's key blind to column names",
        "mmt_tune/training/fold_cache.py",
        "    content.update(repr(list(table.columns)).encode())\n",
        "",
        (GUARANTEES, "-k", "fold_cache"),
    ),
    Mutant(
        "the fold cache's key blind to the preprocessing options",
        "mmt_tune/training/fold_cache.py",
        "        repr(config.preprocess),\n",
        "        repr(config.preprocess.k),\n",
        (GUARANTEES, "-k", "fold_cache"),
    ),
    Mutant(
        "nested CV: the inner study given the whole table",
        "mmt_tune/study/nested.py",
        "write_feature_table(table.iloc[train].reset_index(drop=True), features, prepared.metadata)",
        "write_feature_table(table.reset_index(drop=True), features, prepared.metadata)",
        (GUARANTEES, "-k", "nested"),
    ),
    Mutant(
        "nested CV: the chosen configuration refitted on all rows before the outer test rows are scored",
        "mmt_tune/study/nested.py",
        "score_chosen(table, chosen, train, test, opts.seed)",
        "score_chosen(table, chosen, np.arange(len(table)), test, opts.seed)",
        (GUARANTEES, "-k", "nested"),
    ),
    Mutant(
        "a held-out table: the refit trained on the study table plus the held-out rows",
        "mmt_tune/study/holdout.py",
        "both, chosen, np.arange(len(table)), np.arange(len(table), len(both)), seed",
        "both, chosen, np.arange(len(both)), np.arange(len(table), len(both)), seed",
        (GUARANTEES, "-k", "held_out_table_is_scored"),
    ),
    Mutant(
        "a held-out table's metrics computed against the training rows' labels",
        "mmt_tune/study/holdout.py",
        '    y = table["label"].to_numpy(int)[test_index]\n',
        '    y = table["label"].to_numpy(int)[np.asarray(train_index)[: len(test_index)]]\n',
        (GUARANTEES, "-k", "held_out_table_reports"),
    ),
    Mutant(
        "predict takes the features in the new table's column order",
        "mmt_tune/training/preprocess.py",
        "        values = frame[self.columns].to_numpy(dtype=float)\n",
        "        values = frame[[c for c in frame.columns if c in self.columns]].to_numpy(dtype=float)\n",
        (GUARANTEES, "-k", "by_name"),
    ),
    Mutant(
        "predict gives a model that cannot score subsets a patient lacking one of its sequences",
        "mmt_tune/deploy/routing.py",
        "if f.config.spec.subsets and have < set(f.config.present)]",
        "if have < set(f.config.present)]",
        (GUARANTEES, "-k", "routed"),
    ),
    Mutant(
        "predict chooses the worst-scoring candidate",
        "mmt_tune/deploy/routing.py",
        "        return max(\n            keys,",
        "        return min(\n            keys,",
        (GUARANTEES, "-k", "routed"),
    ),
    Mutant(
        "predict counts a sequence missing when any (not every) value is empty",
        "mmt_tune/deploy/routing.py",
        "table[columns].notna().any(axis=1).to_numpy()",
        "table[columns].notna().all(axis=1).to_numpy()",
        (GUARANTEES, "-k", "imputed_not_a_missing"),
    ),
    Mutant(
        "robustness scores a subset with the first len(subset) modalities",
        "mmt_tune/training/crossval.py",
        "                for m in subset\n            }",
        "                for m in config.present[: len(subset)]\n            }",
        (GUARANTEES, "-k", "robustness_scores"),
    ),
    Mutant(
        "MFN-VAE's modality dropout left on at evaluation",
        "mmt_tune/models/vae.py",
        "if self.training and self.modality_dropout > 0 and len(given) > 1:",
        "if self.modality_dropout > 0 and len(given) > 1:",
        (GUARANTEES, "-k", "training_only"),
    ),
    Mutant(
        "dropout left on at evaluation (the shared MLP block)",
        "mmt_tune/models/blocks.py",
        "        if not self.training or self.p == 0.0:",
        "        if self.p == 0.0:",
        (GUARANTEES, "-k", "training_only or without_dropout"),
    ),
    Mutant(
        "the trainer scores the validation rows in training mode",
        "mmt_tune/training/trainer.py",
        "            self.model.eval()\n            with torch.no_grad():\n                out, _, val_losses",
        "            with torch.no_grad():\n                out, _, val_losses",
        (GUARANTEES, "-k", "evaluation_mode"),
    ),
    Mutant(
        "repeated CV: repeats 2, 3, ... reuse one split",
        "mmt_tune/training/preprocess.py",
        "    return seed + 1_000_003 * repeat\n",
        "    return seed + 1_000_003 * min(repeat, 1)\n",
        (GUARANTEES, "-k", "repeated"),
    ),
    Mutant(
        "sensitivity and specificity swapped in the functions the bootstrap intervals use",
        "mmt_tune/metrics.py",
        '    "sensitivity": sensitivity,\n    "specificity": specificity,\n}',
        '    "sensitivity": specificity,\n    "specificity": sensitivity,\n}',
        (GUARANTEES, "-k", "own_interval"),
    ),
    Mutant(
        "precision divided by the actual positives (sensitivity's denominator)",
        "mmt_tune/metrics.py",
        "    return _ratio(tp, tp + fp)\n",
        "    return _ratio(tp, tp + fn)\n",
        (GUARANTEES, "-k", "definition"),
    ),
    Mutant(
        "AUC counts tied pairs as ordered",
        "mmt_tune/metrics.py",
        "    rank_sum = rankdata(scores)[y_true == 1].sum()\n",
        '    rank_sum = rankdata(scores, method="max")[y_true == 1].sum()\n',
        (GUARANTEES, "-k", "definition"),
    ),
    Mutant(
        "Table 2 prints specificity under the Sensitivity heading",
        "mmt_tune/analysis/types.py",
        '    "sensitivity": "Sensitivity",\n    "specificity": "Specificity",',
        '    "sensitivity": "Specificity",\n    "specificity": "Sensitivity",',
        (GUARANTEES, "-k", "table2_and_performance"),
    ),
    Mutant(
        "a bundle loads each member's scale as its mean",
        "mmt_tune/deploy/bundle.py",
        '                    arrays[f"{i}/{m}/mean"],\n                    arrays[f"{i}/{m}/scale"],',
        '                    arrays[f"{i}/{m}/scale"],\n                    arrays[f"{i}/{m}/scale"],',
        ("tests/deploy/test_bundle.py",),
    ),
    Mutant(
        "W&B's host name mask removed",
        "mmt_tune/study/tracking.py",
        "        host=MASKED,\n",
        "",
        (GUARANTEES, "-k", "wandb"),
    ),
    Mutant(
        "W&B runs grouped by the results folder instead of the study",
        "mmt_tune/study/tracking.py",
        '        group=f"{tracking.study}/{configuration}",\n',
        '        group=f"{tracking.dir}/{configuration}",\n',
        (GUARANTEES, "-k", "wandb"),
    ),
    Mutant(
        "DeLong's p is 0 when a class has a single case",
        "mmt_tune/stats.py",
        "    return bool(counts.min() >= 2)\n",
        "    return bool(counts.min() >= 1)\n",
        ("tests/test_stats.py",),
    ),
    Mutant(
        "a constant fold difference drops out of Holm's family",
        "mmt_tune/stats.py",
        "        return 1.0 if np.allclose(d, 0.0) else 0.0\n",
        "        return np.nan\n",
        ("tests/test_stats.py",),
    ),
    Mutant(
        "a held-out table sharing exactly one patient with the study accepted",
        "mmt_tune/study/holdout.py",
        "    if shared:\n",
        "    if len(shared) > 1:\n",
        (GUARANTEES, "-k", "sharing"),
    ),
    Mutant(
        "a bundle imputes a kept column with another column's training median (after dropped columns)",
        "mmt_tune/training/preprocess.py",
        'median=np.asarray(steps["impute"].statistics_, dtype=float)[original],',
        'median=np.asarray(steps["impute"].statistics_, dtype=float)[chosen],',
        (GUARANTEES, "-k", "bundle_transform"),
    ),
    Mutant(
        "performance.json gives every metric the AUC's interval",
        "mmt_tune/analysis/metrics.py",
        "clipped(corrected_t_interval(rows[metric], split_fraction(rows)))",
        'clipped(corrected_t_interval(rows["auc"], split_fraction(rows)))',
        (GUARANTEES, "-k", "table2_and_performance"),
    ),
    Mutant(
        "a bundle's recorded hashes are never checked",
        "mmt_tune/deploy/bundle.py",
        "    check_hashes(manifest, folder, path)\n",
        "",
        ("tests/deploy/test_integrity.py",),
    ),
    Mutant(
        "the temperature is fitted on the fold's validation rows",
        "mmt_tune/training/trainer.py",
        "temperature = fit_temperature(held_out, self.monitor.y, self.monitor.rows)",
        "temperature = fit_temperature(logits, self.val.y, self.val.rows)",
        ("tests/training/test_temperature.py",),
    ),
    Mutant(
        "a study one trial short of its budget is called finished",
        "mmt_tune/analysis/completion.py",
        "for k in keys if ran.get(k, 0) < planned]",
        "for k in keys if ran.get(k, 0) < planned - 1]",
        ("tests/analysis/test_report_calibration.py",),
    ),
    Mutant(
        "an output unit puts each file in place as soon as it is written",
        "mmt_tune/_io.py",
        "            unit.append((tmp_path, target))\n            return\n",
        "",
        ("tests/test__io.py",),
    ),
    Mutant(
        "calibration scores depend on the order the predictions are stored in",
        "mmt_tune/analysis/calibration.py",
        '    return oof.sort_values(keys, kind="stable") if keys else oof\n',
        "    return oof\n",
        ("tests/analysis/test_report_calibration.py",),
    ),
    Mutant(
        "a rule without missing: ignores the subsets cap",
        "mmt_tune/space_rules.py",
        "if size < 1 or (missing is None and cap is not None and cap < size < n):",
        "if size < 1:",
        ("tests/test_space_rules.py",),
    ),
    Mutant(
        "a rule's set is given to the last model that accepts it, not the first",
        "mmt_tune/space_rules.py",
        "model = next((m for m in models if accepts(m, present)), None)",
        "model = next((m for m in reversed(models) if accepts(m, present)), None)",
        ("tests/test_space_rules.py",),
    ),
    Mutant(
        "packs keep the size asked for whatever the trial slots",
        "mmt_tune/study/search.py",
        "        if makespan(budgets, size, slots) <= SLACK * single:\n",
        "        if True:\n",
        ("tests/study/test_search.py",),
    ),
    Mutant(
        "a failed compile is retried (and fails) at every later step",
        "mmt_tune/training/compiled.py",
        "        if self.backend in _broken:\n            return self.eager(*args)\n",
        "",
        ("tests/training/test_compiled.py",),
    ),
    Mutant(
        "a manifest with some labels empty reads them as unlabelled",
        "mmt_tune/data/manifest.py",
        'labelled = any((row.get("label") or "").strip() for row in rows)',
        'labelled = all((row.get("label") or "").strip() for row in rows)',
        ("tests/data/test_manifest.py",),
    ),
]


def run(mutant: Mutant, full: bool, timeout: int) -> tuple[str, float]:
    path = REPO / mutant.path
    original = path.read_text()
    if original.count(mutant.original) != 1:
        raise SystemExit(
            f"error: {mutant.path}: the snippet of {mutant.what!r} occurs "
            f"{original.count(mutant.original)} times (expected once); update this script"
        )
    tests = ["-m", "not slow"] if full else list(mutant.tests)
    start = time.perf_counter()
    try:
        path.write_text(original.replace(mutant.original, mutant.mutated))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                **os.environ,
                "RAY_USAGE_STATS_ENABLED": "0",
                "WANDB_MODE": "offline",
                "WANDB_SILENT": "true",
            },
        )
        verdict = "caught" if done.returncode != 0 else "SURVIVED"
    except subprocess.TimeoutExpired:
        verdict = "caught (timeout)"
    finally:
        path.write_text(original)
    return verdict, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole fast suite for each mutant")
    parser.add_argument("--only", default=None, help="comma-separated mutant numbers (1-based)")
    parser.add_argument("--timeout", type=int, default=1200)
    args = parser.parse_args(argv)
    chosen = [int(i) for i in args.only.split(",")] if args.only else range(1, len(MUTANTS) + 1)
    survived = 0
    print("| # | planted bug | where | result | seconds |\n| ---: | --- | --- | --- | ---: |")
    for number in chosen:
        mutant = MUTANTS[number - 1]
        verdict, seconds = run(mutant, args.full, args.timeout)
        survived += verdict == "SURVIVED"
        print(f"| {number} | {mutant.what} | `{mutant.path}` | {verdict} | {seconds:.0f} |", flush=True)
    print(f"\n{len(chosen)} planted, {len(chosen) - survived} caught, {survived} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
