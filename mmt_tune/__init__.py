"""mmt-tune: hyperparameter studies of missing-modality radiomics classifiers.

Packages by stage: :mod:`.data` and :mod:`.radiomics` (data in, features), :mod:`.training` (folds, in-fold
preprocessing, the packed trainer, cross-validation, refits), :mod:`.study` (Ray Tune + Optuna studies),
:mod:`.analysis` (Tables 2 and 3, figures, the report), :mod:`.deploy` (bundles, predicting new patients),
:mod:`.models` (the model registry). Shared definitions: :mod:`.config`, :mod:`.records` (the results
folder's contract), :mod:`.metrics`, :mod:`.stats`, :mod:`.modalities`, :mod:`.spaces`, :mod:`.errors`.
Commands: ``mmt-tune COMMAND`` (:mod:`.cli`), or ``python -m mmt_tune.run``, ``.train``, ``.fit``,
``.predict``, ``.extract``, ``.demo``, ``.dashboard``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
