"""mmt-tune: hyperparameter studies of missing-modality radiomics classifiers."""

__version__ = "0.1.0"
