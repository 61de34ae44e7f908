"""Data in: the manifest (:mod:`.manifest`), the feature table (:mod:`.table`), the phantom cohort
(:mod:`.synth`, cached as a feature table by :mod:`.phantom`) and public tables (:mod:`.public`).
Extraction from images is :mod:`mmt_tune.radiomics`."""

__all__ = ["convert", "manifest", "phantom", "public", "scan", "synth", "table"]
