"""Phantom cohort: co-registered T1WI/FLAIR/DWI volumes with lesion masks, written as NIfTI + ``manifest.csv``.

Real cohorts are private, so the project generates one on demand. Each patient gets a slab of "brain"
(smooth tissue texture inside an ellipse, air outside) and one or more metastases whose appearance depends on
the class, the way radiologists describe the two histologies:

======== ============================================ =================================================
modality what differs between SCLC and NSCLC          knob (Cohen's d of the class shift)
======== ============================================ =================================================
T1WI     post-contrast: NSCLC has a larger necrotic    ``effects["T1WI"]``: necrotic-core fraction and
         (dark) core inside an enhancing rim            texture heterogeneity
FLAIR    NSCLC has more perilesional edema, which       ``effects["FLAIR"]``: lesion FLAIR signal and edema
         raises FLAIR signal in and around the lesion   halo width
DWI      SCLC is more cellular: brighter and more       ``effects["DWI"]``: lesion DWI signal (SCLC up) and
         homogeneous on DWI                             heterogeneity (NSCLC up)
all      SCLC lesions are smaller                       ``size_effect``: radius (shape features; the masks are
                                                        shared, so this signal is in every modality)
======== ============================================ =================================================

Every class-dependent quantity is ``shift + noise`` with the noise drawn independently per quantity, so an
effect of ``d`` separates the two classes by ``d`` within-class standard deviations on that quantity, and
modalities carry complementary (not copied) evidence. On top come nuisances that real MRI has: anisotropic
voxels (thick slices), a smooth multiplicative bias field, a per-scan gain, Rician noise, and irregular lesion
borders. With the defaults a single modality is informative but far from separable: a logistic regression on
the ``fast`` features reaches a cross-validated AUC of about 0.72 (T1WI), 0.55 (FLAIR, whose edema lies mostly
outside the mask), 0.76 (DWI) and 0.8 with T1WI+DWI (docs/method.md, "The phantom cohort"). Effects of 0 give a cohort
whose labels are independent of the images.

The generator is deterministic: the same configuration and seed give byte-identical manifests and identical
voxel arrays. Each patient has its own random stream, derived from ``(seed, patient index)``.

Usage::

    python -m mmt_tune.data.synth --out phantom/ --patients 279 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mmt_tune._io import atomic_path, write_text_atomic
from mmt_tune.cli import HelpFormatter, add_quiet, add_version
from mmt_tune.errors import InputError, describe
from mmt_tune.modalities import MODALITIES, NEGATIVE_CLASS, POSITIVE_CLASS

#: The paper's cohort: 100 SCLC and 179 NSCLC patients.
PAPER_SCLC, PAPER_NSCLC = 100, 179

# Baseline tissue intensity per sequence (arbitrary scanner units, as stored in int16 DICOM/NIfTI).
_TISSUE_LEVEL = {"T1WI": 600.0, "FLAIR": 500.0, "DWI": 300.0}


@dataclass(frozen=True)
class PhantomConfig:
    """What the phantom cohort looks like. Defaults follow the paper's cohort size and class balance."""

    n_sclc: int = PAPER_SCLC
    n_nsclc: int = PAPER_NSCLC
    seed: int = 0
    # Cohen's d of the class shift on the quantities each modality encodes (see the module docstring).
    effects: dict[str, float] = field(default_factory=lambda: {"T1WI": 0.8, "FLAIR": 0.6, "DWI": 1.0})
    # Cohen's d of the lesion-radius difference (SCLC smaller); visible to every modality through the mask.
    size_effect: float = 0.3
    # Each patient gets between 1 and max_lesions lesions; > 1 adds a lesion_id column to the manifest.
    max_lesions: int = 1
    # Volume size in voxels (x, y, z) and voxel spacing in mm: thin in-plane, thick slices, like clinical MRI.
    shape: tuple[int, int, int] = (48, 48, 16)
    spacing: tuple[float, float, float] = (0.9, 0.9, 3.0)
    # Rician noise level and bias-field strength, relative to tissue intensity.
    noise: float = 0.04
    bias: float = 0.15
    # Probability that a patient lacks one (random) modality: empty manifest cells, no file written.
    missing_rate: float = 0.0

    def validate(self) -> None:
        if self.n_sclc < 1 or self.n_nsclc < 1:
            raise InputError(
                f"phantom: need at least one patient per class (got {self.n_sclc} SCLC, {self.n_nsclc} NSCLC)"
            )
        unknown = set(self.effects) - set(MODALITIES)
        if unknown:
            raise InputError(
                f"phantom: unknown modality in effects: {sorted(unknown)} (known: {', '.join(MODALITIES)})"
            )
        if self.max_lesions < 1:
            raise InputError(f"phantom: max_lesions must be >= 1 (got {self.max_lesions})")
        if min(self.shape) < 8 or self.shape[0] < 32 or self.shape[1] < 32:
            raise InputError(f"phantom: shape {self.shape} too small (need >= 32 x 32 x 8 voxels)")
        if not 0.0 <= self.missing_rate <= 1.0:
            raise InputError(f"phantom: missing_rate must be in [0, 1] (got {self.missing_rate})")

    def effect(self, modality: str) -> float:
        return float(self.effects.get(modality, 0.0))


@dataclass
class PhantomCase:
    """One generated patient: voxel arrays (z, y, x) per modality and one mask per lesion."""

    patient_id: str
    label: str
    images: dict[str, np.ndarray]
    masks: list[np.ndarray]


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int, int], sigma_vox: Sequence[float]
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field (white noise smoothed per axis)."""
    from scipy.ndimage import gaussian_filter

    field_ = gaussian_filter(rng.standard_normal(shape), sigma=sigma_vox, mode="reflect")
    return (field_ - field_.mean()) / (field_.std() + 1e-12)


def _lesion_params(rng: np.random.Generator, config: PhantomConfig, sign: float) -> dict[str, float]:
    """Class-dependent lesion appearance; ``sign`` is +1/2 for NSCLC and -1/2 for SCLC."""

    def shifted(effect: float) -> float:
        # Class difference of `effect` within-class SDs, plus independent per-quantity noise.
        return effect * sign + rng.standard_normal()

    e = config.effect
    return {
        "radius_mm": float(np.clip(5.5 + 1.2 * shifted(config.size_effect), 2.5, 10.0)),
        "necrosis": float(np.clip(0.35 + 0.15 * shifted(e("T1WI")), 0.0, 0.8)),
        "t1_heterogeneity": float(0.10 * np.exp(0.35 * shifted(e("T1WI")))),
        "flair_level": float(1.35 + 0.12 * shifted(e("FLAIR"))),
        "edema_mm": float(np.clip(4.0 + 1.5 * shifted(e("FLAIR")), 0.5, 10.0)),
        "dwi_level": float(1.6 - 0.18 * shifted(e("DWI"))),
        "dwi_heterogeneity": float(0.08 * np.exp(0.35 * shifted(e("DWI")))),
        "irregularity": float(rng.uniform(0.05, 0.2)),
    }


def _place_lesions(
    rng: np.random.Generator, coords: np.ndarray, centre: np.ndarray, semi: np.ndarray, radii: list[float]
) -> list[np.ndarray]:
    """Lesion centres (mm) well inside the brain ellipse and apart from each other (rejection sampling)."""
    centres: list[np.ndarray] = []
    flat = coords.reshape(3, -1)
    for radius in radii:
        # Shrink the in-plane semi-axes by the radius plus an edema margin; slices are thick, so z is not shrunk.
        inner = semi - np.array([0.0, radius + 4.0, radius + 4.0])
        inside = (((flat - centre[:, None]) / inner[:, None]) ** 2).sum(0) <= 1.0
        candidates = flat[:, inside]
        for _ in range(100):
            c = candidates[:, rng.integers(candidates.shape[1])]
            if all(np.linalg.norm(c - o) > radius + 12.0 for o in centres):
                break
        centres.append(c)
    return centres


def generate_case(config: PhantomConfig, index: int, patient_id: str, label: str) -> PhantomCase:
    """Generate one patient deterministically from ``(config.seed, index)``."""
    rng = np.random.default_rng([config.seed, index])
    nx, ny, nz = config.shape
    sx, sy, sz = config.spacing
    shape_zyx = (nz, ny, nx)
    # Physical coordinates (mm) of every voxel, axis 0 = (z, y, x).
    zz, yy, xx = np.meshgrid(np.arange(nz) * sz, np.arange(ny) * sy, np.arange(nx) * sx, indexing="ij")
    coords = np.stack([zz, yy, xx])
    centre = np.array([(nz - 1) * sz / 2, (ny - 1) * sy / 2, (nx - 1) * sx / 2])
    semi = np.array([nz * sz * 0.75, ny * sy * 0.46, nx * sx * 0.44])
    brain = (((coords - centre[:, None, None, None]) / semi[:, None, None, None]) ** 2).sum(0) <= 1.0

    sign = 0.5 if label == NEGATIVE_CLASS else -0.5
    n_lesions = int(rng.integers(1, config.max_lesions + 1))
    params = [_lesion_params(rng, config, sign) for _ in range(n_lesions)]
    centres = _place_lesions(rng, coords, centre, semi, [p["radius_mm"] for p in params])

    smooth_sigma = (0.7, 3.0, 3.0)  # voxels (z, y, x): tissue texture is smoother in-plane than across slices
    tissue_texture = _smooth_field(rng, shape_zyx, smooth_sigma)
    masks: list[np.ndarray] = []
    # Per-lesion geometry: normalised distance from the centre (1 at the border of the smooth ellipsoid),
    # an irregular border (additive smooth perturbation near the surface), and the lesion's inner texture.
    rel_dist, lesion_texture = [], []
    for p, c in zip(params, centres, strict=True):
        smooth_dist = np.sqrt(((coords - c[:, None, None, None]) ** 2).sum(0)) / p["radius_mm"]
        border = smooth_dist + p["irregularity"] * _smooth_field(rng, shape_zyx, (0.8, 3.0, 3.0))
        mask = (border <= 1.0) & brain
        if mask.sum() < 8:  # keep every lesion measurable: fall back to the plain ellipsoid
            mask = smooth_dist <= 1.0
        masks.append(mask.astype(np.uint8))
        rel_dist.append(smooth_dist)
        lesion_texture.append(_smooth_field(rng, shape_zyx, (0.5, 1.0, 1.0)))

    missing: str | None = None
    if config.missing_rate > 0 and rng.random() < config.missing_rate:
        missing = MODALITIES[int(rng.integers(len(MODALITIES)))]

    images: dict[str, np.ndarray] = {}
    for modality in MODALITIES:
        level = _TISSUE_LEVEL[modality]
        signal = np.where(brain, 1.0 + 0.06 * tissue_texture, 0.02)
        for p, d, tex, mask in zip(params, rel_dist, lesion_texture, masks, strict=True):
            inside = mask.astype(bool)
            if modality == "T1WI":
                # Enhancing rim (bright) around a necrotic core (dark); core size grows with necrosis.
                core = d < p["necrosis"]
                value = np.where(core, 0.55, 1.7) + p["t1_heterogeneity"] * 3 * tex
            elif modality == "FLAIR":
                # Perilesional edema: a halo of raised FLAIR signal, edema_mm thick around the lesion.
                edema_zone = (d < 1.0 + p["edema_mm"] / p["radius_mm"]) & ~inside & brain
                signal = np.where(edema_zone, 1.35 + 0.04 * tex, signal)
                value = p["flair_level"] + 0.12 * tex
            else:  # DWI
                value = p["dwi_level"] + p["dwi_heterogeneity"] * 3 * tex
            signal = np.where(inside, value, signal)
        bias = np.exp(config.bias * _smooth_field(rng, shape_zyx, (2.0, 12.0, 12.0)))
        gain = rng.uniform(0.85, 1.15)
        clean = level * gain * bias * signal
        sigma = config.noise * level
        noisy = np.sqrt(
            (clean + sigma * rng.standard_normal(shape_zyx)) ** 2
            + (sigma * rng.standard_normal(shape_zyx)) ** 2
        )
        if modality != missing:
            images[modality] = np.clip(np.rint(noisy), 0, np.iinfo(np.int16).max).astype(np.int16)
    return PhantomCase(patient_id=patient_id, label=label, images=images, masks=masks)


def _write_nifti(array: np.ndarray, spacing: Sequence[float], path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    with atomic_path(path) as tmp:
        # SimpleITK picks the format from the extension, so the temporary file keeps the target's suffix.
        tmp_nii = tmp.with_name(tmp.name + ".nii.gz")
        try:
            sitk.WriteImage(image, str(tmp_nii), useCompression=True)
            tmp_nii.replace(tmp)
        finally:
            tmp_nii.unlink(missing_ok=True)


def patient_labels(config: PhantomConfig) -> list[tuple[str, str]]:
    """(patient_id, label) in manifest order: labels shuffled by the seed so classes interleave."""
    labels = np.array([POSITIVE_CLASS] * config.n_sclc + [NEGATIVE_CLASS] * config.n_nsclc)
    np.random.default_rng(config.seed).shuffle(labels)
    width = max(4, len(str(len(labels))))
    return [(f"PH{i + 1:0{width}d}", str(lab)) for i, lab in enumerate(labels)]


def generate_cohort(out: str | Path, config: PhantomConfig | None = None, progress: bool = True) -> Path:
    """Write the phantom cohort under ``out`` and return the path of its ``manifest.csv``.

    Images go to ``out/images``, masks to ``out/masks``; the manifest (written last, atomically) uses paths
    relative to ``out``. ``out/cohort.json`` records the configuration that made the cohort.
    """
    from tqdm.auto import tqdm

    config = config or PhantomConfig()
    config.validate()
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    with_lesion_id = config.max_lesions > 1

    header = ["patient_id"] + (["lesion_id"] if with_lesion_id else []) + ["label"]
    for modality in MODALITIES:
        header += [f"{modality}_image", f"{modality}_mask"]
    rows: list[list[str]] = []
    patients = patient_labels(config)
    for index, (patient_id, label) in enumerate(
        tqdm(patients, desc="phantom cohort", unit="patient", disable=not progress)
    ):
        case = generate_case(config, index, patient_id, label)
        image_paths = {}
        for modality, array in case.images.items():
            rel = f"images/{patient_id}_{modality}.nii.gz"
            _write_nifti(array, config.spacing, out / rel)
            image_paths[modality] = rel
        for lesion_index, mask in enumerate(case.masks, start=1):
            # Co-registered sequences share one segmentation per lesion.
            mask_rel = f"masks/{patient_id}_L{lesion_index}.nii.gz"
            _write_nifti(mask, config.spacing, out / mask_rel)
            row = [patient_id] + ([str(lesion_index)] if with_lesion_id else []) + [label]
            for modality in MODALITIES:
                present = modality in image_paths
                row += [image_paths[modality], mask_rel] if present else ["", ""]
            rows.append(row)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    meta = asdict(config)
    meta["generator"] = "mmt_tune.data.synth"
    write_text_atomic(out / "cohort.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    manifest = out / "manifest.csv"
    write_text_atomic(manifest, buffer.getvalue())
    return manifest


def _parse_effect(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or name not in MODALITIES:
        raise argparse.ArgumentTypeError(
            f"expected MODALITY=VALUE with MODALITY in {', '.join(MODALITIES)}, got {text!r}"
        )
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"effect value must be a number, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    default = PhantomConfig()
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.data.synth",
        description="Generate the phantom cohort: T1WI/FLAIR/DWI NIfTI volumes, lesion masks and manifest.csv.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument(
        "--patients",
        type=int,
        default=None,
        help=f"number of patients, split in the paper's ratio {PAPER_SCLC}:{PAPER_NSCLC} SCLC:NSCLC "
        f"(default: {PAPER_SCLC + PAPER_NSCLC}, the paper's cohort)",
    )
    parser.add_argument("--seed", type=int, default=default.seed, help="random seed (same seed, same cohort)")
    parser.add_argument(
        "--effect",
        type=_parse_effect,
        action="append",
        default=[],
        metavar="MOD=D",
        help=f"class effect size (Cohen's d) for one modality, repeatable; defaults {default.effects}",
    )
    parser.add_argument(
        "--size-effect", type=float, default=default.size_effect, help="effect size of lesion radius"
    )
    parser.add_argument(
        "--lesions", type=int, default=default.max_lesions, help="maximum lesions per patient"
    )
    parser.add_argument(
        "--noise", type=float, default=default.noise, help="Rician noise level (fraction of tissue)"
    )
    parser.add_argument("--bias", type=float, default=default.bias, help="bias-field strength")
    parser.add_argument(
        "--missing-rate",
        type=float,
        default=default.missing_rate,
        help="probability that a patient lacks one modality",
    )
    add_quiet(parser)
    return parser


def class_sizes(patients: int | None) -> tuple[int, int]:
    """(SCLC, NSCLC) patients of a phantom cohort: the paper's 100/179 ratio, or the paper's cohort."""
    if patients is None:
        return PAPER_SCLC, PAPER_NSCLC
    if patients < 2:
        raise InputError(f"--patients must be >= 2 (got {patients})")
    n_sclc = min(max(1, round(patients * PAPER_SCLC / (PAPER_SCLC + PAPER_NSCLC))), patients - 1)
    return n_sclc, patients - n_sclc


def config_from_args(args: argparse.Namespace) -> PhantomConfig:
    default = PhantomConfig()
    n_sclc, n_nsclc = class_sizes(args.patients)
    effects = dict(default.effects)
    effects.update(dict(args.effect))
    return PhantomConfig(
        n_sclc=n_sclc,
        n_nsclc=n_nsclc,
        seed=args.seed,
        effects=effects,
        size_effect=args.size_effect,
        max_lesions=args.lesions,
        noise=args.noise,
        bias=args.bias,
        missing_rate=args.missing_rate,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        manifest = generate_cohort(args.out, config, progress=not args.no_progress)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    print(
        f"wrote {config.n_sclc + config.n_nsclc} patients ({config.n_sclc} SCLC, {config.n_nsclc} NSCLC) -> {manifest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
