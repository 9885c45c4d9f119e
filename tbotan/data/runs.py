"""The run layout of a store: where each trained model and its predictions live (no torch, no dask).

A *run* is one (variant, lambda_g) the spec trains; each has one folder of checkpoints per seed and one group of
predictions per seed:

    <store>/models/<name>/seed<s>/        last.pt, best.pt, history.json   (tbotan train)
    <store>/predictions/<name>/seed<s>/   T<T>/ groups                      (tbotan evaluate)

``<name>`` is the variant (``both``, ``inherent``, ``thermal``), plus ``_lambda<value>`` when lambda_g is not the
spec's first value (a sweep). Every reader and writer of these paths goes through this module.

``history.json`` holds one entry per epoch with the train and validation means of the loss terms ``TERMS``
(tbotan.learn.loss: L_MSE, L_Var, L_Corr, L_edge, L_global), and the validation rho_A that ``plateau_message``
reads.
"""

from __future__ import annotations

from pathlib import Path

MODELS = "models"
PREDICTIONS = "predictions"
BEST, LAST, HISTORY = "best.pt", "last.pt", "history.json"
TERMS = ("mse", "var", "corr", "edge", "global")  # the loss terms history.json records, in this order


def variant_name(spec, variant: str, lambda_g: float | None = None) -> str:
    """The run's name in the store: the variant, with ``_lambda<value>`` when lambda_g is not the spec's first."""
    default = spec.training.lambda_g_values[0]
    if lambda_g is None or float(lambda_g) == float(default):
        return variant
    return f"{variant}_lambda{float(lambda_g):g}"


def runs(spec, variant: str | None = None, lambda_g: float | None = None) -> list[tuple[str, float]]:
    """Every (variant, lambda_g) the spec trains: its variants times its lambda_g values (a sweep); a given
    ``variant`` or ``lambda_g`` replaces the spec's list (`--variant`, `--lambda-g`)."""
    variants = [variant] if variant else spec.training.variants
    lambdas = [lambda_g] if lambda_g is not None else spec.training.lambda_g_values
    return [(v, lam) for v in variants for lam in lambdas]


def run_flags(spec, variant: str, lambda_g: float | None = None) -> str:
    """The `tbotan train/evaluate` options that select one run, e.g. ' --variant thermal --lambda-g 0.1'."""
    return ("" if variant == "both" else f" --variant {variant}") + (
        "" if variant_name(spec, variant, lambda_g) == variant else f" --lambda-g {float(lambda_g):g}"
    )


def model_folder(store_path, name: str, seed: int) -> Path:
    """``<store>/models/<name>/seed<s>``: a seed's checkpoints and history."""
    return Path(store_path) / MODELS / name / f"seed{seed}"


def model_dir(store_path, spec, variant: str = "both", lambda_g: float | None = None, seed: int = 0) -> Path:
    """``model_folder`` of a run given by variant and lambda_g."""
    return model_folder(store_path, variant_name(spec, variant, lambda_g), seed)


def predictions_path(name: str, seed: int) -> str:
    """The Zarr path of a seed's predictions inside the store, e.g. ``predictions/both/seed0``."""
    return f"{PREDICTIONS}/{name}/seed{seed}"


def predictions_group(spec, variant: str = "both", lambda_g: float | None = None, seed: int = 0) -> str:
    """``predictions_path`` of a run given by variant and lambda_g."""
    return predictions_path(variant_name(spec, variant, lambda_g), seed)


def histories(store_path) -> list[Path]:
    """Every ``models/<name>/seed<s>/history.json`` of a store, sorted."""
    return sorted(Path(store_path).glob(f"{MODELS}/*/seed*/{HISTORY}"))


PLATEAU_RHO = 0.1  # validation rho_A below this at half the phase before the switch: the run is on the plateau


def plateau_message(seed: int, history: list[dict], switch_epoch: int) -> str | None:
    """A warning when ``history`` has reached half of the phase before the switch and the validation rho_A of its
    last 5 epochs up to there stayed below PLATEAU_RHO; None otherwise (or before then, or for a history written
    before the validation rho_A was recorded)."""
    half = switch_epoch // 2
    if not half or not history or history[-1]["epoch"] < half:
        return None
    if not all("pearson_A" in h.get("validation", {}) for h in history):
        return None
    around = [h["validation"]["pearson_A"] for h in history if half - 5 < h["epoch"] <= half]
    if not around or max(around) >= PLATEAU_RHO:
        return None
    return (
        f"seed {seed}: validation rho_A {around[-1]:.2f} at epoch {half}, half-way to the switch (below "
        f"{PLATEAU_RHO} for its last {len(around)} epochs): the run sits on the plateau, every A particle predicted "
        f'alike (docs/training.md, "The plateau"); its numbers say little about what the data carry'
    )
