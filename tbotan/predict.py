"""``tbotan predict``: a trained T-BOTAN on configurations from any file, each file one Dask task (docs/predict.md).

    tbotan predict model.pt run1.dump run2.xyz --out predictions/      # a model file (`tbotan export model`)
    tbotan predict storage/quickstart.zarr conf.xyz --variant both      # or a store's checkpoints

For each file ``X.ext`` (tbotan.data.configurations reads it and maps its species): the configuration is checked
(box, NaN, duplicates: an error; composition, density: a warning), brought to its inherent structure (the file's
own, or ``--inherent``'s, when its mean force by tbotan.md.engine in double is at most the tolerance, 1e-12;
otherwise FIRE from it, or from the configuration, with tbotan.md.fire.quench), turned into the training graph and
predicted by every seed (tbotan.learn.inference). Written into the output folder (default ``predictions/``):

    X.xyz        extended XYZ: species, pos (17 digits), Z, cb_pred, cb_pred_std, inherent (ASE and OVITO read it)
    X.edges.npz  edges (E, 2), e_pred (E,) mean over seeds, e_pred_seeds (S, E), cb_pred_seeds (S, N), seeds (S,)
    X.png        the predicted C_B map in the model's slab (as the report's maps)
    X.json       t_pred (one per seed), t_pred_mean, t_pred_std, fire_residual, model_sha256, N, box, source, ...

``X.json`` is written last: a rerun skips a file whose ``X.json`` exists with the same ``model_sha256``. A file
that cannot be used gets one line naming it and the cause, nothing is written for it, the others go on, and the
command ends listing the failures with exit status 1.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, core
from .errors import ConfigurationError, EvaluationError, TbotanError

logger = logging.getLogger(__name__)

TOLERANCE = 1e-12  # mean force per particle of an inherent structure (the paper's FIRE tolerance)
SUFFIXES = {"xyz": ".xyz", "json": ".json", "edges": ".edges.npz", "png": ".png"}


@dataclass(frozen=True)
class Options:
    """What every file's task shares: the output folder, the species map, the FIRE tolerance and step limit."""

    out_dir: str
    types: dict | None = None
    tolerance: float = TOLERANCE
    max_steps: int = 500_000


def outputs(out_dir, source) -> dict[str, Path]:
    """{kind: path} of the files written for ``source`` (``X.ext`` -> ``X.xyz``, ``X.json``, ...)."""
    stem = Path(source).name.rsplit(".", 1)[0] if "." in Path(source).name else Path(source).name
    return {k: Path(out_dir) / f"{stem}{suffix}" for k, suffix in SUFFIXES.items()}


def up_to_date(out_dir, source, sha: str) -> bool:
    """Whether ``source``'s ``X.json`` exists and was made by the model of ``sha``."""
    path = outputs(out_dir, source)["json"]
    try:
        return json.loads(path.read_text()).get("model_sha256") == sha
    except (OSError, ValueError):
        return False


def inherent_structure(conf, inherent, options: Options) -> dict:
    """The inherent structure of ``conf``: ``inherent`` (or the file's) when its residual is within the tolerance,
    else FIRE from it (or from the configuration); {"positions", "fire_residual", "fire_steps", "inherent"}."""
    from .md import engine, fire

    params = fire.FireParameters(tolerance=options.tolerance, max_steps=options.max_steps)
    start, how = conf.positions, "quenched from the configuration"
    if inherent is not None:
        _, f = engine.energy_and_forces(conf.types, inherent, conf.box)
        residual = engine.mean_force(f)
        if residual <= options.tolerance:
            return {"positions": inherent, "fire_residual": residual, "fire_steps": 0, "inherent": "given"}
        start, how = inherent, f"given (mean force {residual:.3g}), quenched again"
    r = fire.quench(conf.types, start, conf.box, params)
    return {"positions": r.positions, "fire_residual": r.mean_force, "fire_steps": r.steps, "inherent": how}


def _npz_bytes(arrays: dict) -> bytes:
    """An .npz with a fixed date in its zip headers (np.savez writes the current time), so equal arrays give
    equal files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asarray(a), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), data.getvalue())
    return buffer.getvalue()


def write_outputs(paths: dict, conf, inh: dict, pred: dict, record: dict, slab) -> None:
    """The four files of one configuration, ``X.json`` last."""
    from .analysis.figures import pyplot
    from .analysis.prediction_map import draw_prediction_map
    from .data.store import atomic_write
    from .md import xyz

    node = pred["node"].astype(np.float64)
    cb, cb_std = node.mean(axis=0), node.std(axis=0)
    edge = pred["edge"].astype(np.float64)
    box = conf.box
    columns = {"cb_pred": cb, "cb_pred_std": cb_std, "inherent": core.wrap(inh["positions"], box)}
    comment = f"model_sha256={record['model_sha256']} t_pred_mean={record['t_pred_mean']!r}"
    atomic_write(
        paths["xyz"],
        lambda p: xyz.write_columns(p, conf.types, core.wrap(conf.positions, box), box, columns, comment=comment),
        paths["xyz"].name,
    )
    arrays = {
        "edges": pred["edges"],
        "e_pred": edge.mean(axis=0),
        "e_pred_seeds": pred["edge"],
        "cb_pred_seeds": pred["node"],
        "seeds": np.array(pred["seeds"], dtype=np.int64),
    }
    atomic_write(paths["edges"], lambda p: p.write_bytes(_npz_bytes(arrays)), paths["edges"].name)
    fig = draw_prediction_map(
        core.wrap(conf.positions, box),
        conf.types,
        cb,
        box,
        slab,
        f"{Path(conf.source).name}: predicted C_B, mean of {len(pred['seeds'])} seeds, "
        f"T_pred {record['t_pred_mean']:.3f}",
    )
    atomic_write(
        paths["png"], lambda p: fig.savefig(p, dpi=120, format="png", metadata={"Software": None}), paths["png"].name
    )
    pyplot().close(fig)
    atomic_write(paths["json"], lambda p: p.write_text(json.dumps(record, indent=1) + "\n"), paths["json"].name)


def predict_file(model: dict, sha: str, source, options: Options, inherent_file=None) -> dict:
    """One file's prediction, written into ``options.out_dir``: {"source", "warnings", "error" (None when it
    worked), "t_pred_mean"}. A TbotanError (the file, FIRE) becomes ``error``, one line naming the file."""
    from .data.configurations import check_configuration, read_configuration
    from .learn.inference import predict
    from .learn.portable import build_models

    source = str(source)
    result = {"source": source, "warnings": [], "error": None, "t_pred_mean": None}
    try:
        conf = read_configuration(source, options.types)
        inherent = conf.inherent
        if inherent_file is not None:
            given = read_configuration(inherent_file, options.types)
            if len(given.types) != len(conf.types) or not np.array_equal(given.types, conf.types):
                raise ConfigurationError(f"{source}: --inherent {inherent_file} holds other particles")
            inherent = given.positions
        result["warnings"] = check_configuration(
            conf if inherent is None else _with_inherent(conf, inherent), model["density"]
        )
        inh = inherent_structure(conf, inherent, options)
        pred = predict(
            build_models(model),
            model["variant"],
            conf.types,
            conf.positions,
            inh["positions"],
            conf.box,
            symmetrize=model.get("symmetrize", False),  # as `tbotan evaluate` predicted (files before it: False)
        )
        t = [float(v) for v in pred["t"]]
        n = len(conf.types)
        record = {
            "source": source,
            "inherent_source": None if inherent_file is None else str(inherent_file),
            "model": model.get("source"),
            "model_sha256": sha,
            "variant": model["variant"],
            "seeds": [int(s) for s in pred["seeds"]],
            "N": n,
            "box": conf.box,
            "density": n / conf.box**3,
            "composition_A": float(np.mean(conf.types == 0)),
            "t_pred": t,
            "t_pred_mean": float(np.mean(t)),
            "t_pred_std": float(np.std(t)),
            "fire_residual": float(inh["fire_residual"]),
            "fire_steps": int(inh["fire_steps"]),
            "inherent": inh["inherent"],
            "n_edges": int(len(pred["edges"])),
            "warnings": result["warnings"],
            "outputs": {k: p.name for k, p in outputs(options.out_dir, source).items()},
            "tbotan": __version__,
        }
        write_outputs(outputs(options.out_dir, source), conf, inh, pred, record, model.get("slab", [0.0, 0.1]))
        result["t_pred_mean"] = record["t_pred_mean"]
    except TbotanError as e:
        message = str(e)
        result["error"] = message if message.startswith(source) else f"{source}: {message}"
    return result


def _with_inherent(conf, inherent):
    from dataclasses import replace

    return replace(conf, inherent=np.asarray(inherent, dtype=np.float64))


def store_spec(store_path):
    """The job spec recorded in a store (``tbotan train`` and ``evaluate`` record theirs)."""
    from .data.spec import parse_spec
    from .data.store import open_store

    root = open_store(store_path)
    if "spec" not in root.attrs:
        raise EvaluationError(f"{store_path}: no job spec recorded in the store")
    return parse_spec(root.attrs["spec"], f"{store_path} (recorded spec)")


def load_model(source, variant: str = "both", lambda_g: float | None = None) -> tuple[dict, str]:
    """(model dict, model_sha256) of a model file, or of a store's run (a folder) built from its checkpoints."""
    from .learn import portable

    if Path(source).is_dir():
        model = portable.model_from_store(source, store_spec(source), variant, lambda_g)
        return model, portable.store_sha256(model)
    return portable.load_model_file(source)


def predict_files(
    model_source,
    files,
    out_dir="predictions",
    variant: str | None = None,
    types: dict | None = None,
    inherent=None,
    cluster_profile=None,
    tolerance: float = TOLERANCE,
    max_steps: int = 500_000,
) -> dict:
    """Predict every file of ``files`` with the model of ``model_source`` (a model file or a store), each file one
    task on the Dask cluster of ``cluster_profile`` (default: a LocalCluster).

    Args:
        model_source: a file of `tbotan export model`, or a store (its run of ``variant``).
        files: configuration files (formats: tbotan.data.configurations).
        out_dir: the output folder (made if missing).
        variant: a store's run to use (default both); a model file's must match it when given.
        types: species map, e.g. {"1": "A", "2": "B"}.
        inherent: one inherent-structure file per file of ``files`` (or None).
        cluster_profile: a cluster profile file.
        tolerance, max_steps: FIRE's mean-force tolerance and step limit.

    Returns:
        {source: result of ``predict_file``} of the files predicted now (skipped ones are left out). An
        EvaluationError listing the failures when any file failed.
    """
    from .data.driver import Progress, completed
    from .hpc import cluster

    model, sha = load_model(model_source, variant or "both")
    if Path(model_source).is_file() and variant not in (None, model["variant"]):
        raise EvaluationError(f"{model_source} is a model of variant {model['variant']!r}, not {variant!r}")
    model = {**model, "source": str(model_source)}
    files = [str(f) for f in files]
    inherent = list(inherent or [])
    if inherent and len(inherent) != len(files):
        raise ConfigurationError(f"--inherent given {len(inherent)} time(s) for {len(files)} configuration file(s)")
    pairs = dict(zip(files, inherent or [None] * len(files)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = Options(str(out), types, tolerance, max_steps)
    failures, results, todo, names = [], {}, [], {}
    for f in files:
        name = outputs(out, f)["json"].name
        if name in names:
            failures.append(f"{f}: writes the same {name} as {names[name]} (rename one)")
            continue
        names[name] = f
        if up_to_date(out, f, sha):
            logger.info(f"{f}: up to date ({outputs(out, f)['json']})")
        else:
            todo.append(f)
    logger.info(f"predicting {len(todo)} configuration file(s) with {model_source} ({len(model['seeds'])} seeds)")
    if todo:
        profile = cluster.load_profile(cluster_profile)
        with cluster.open_cluster(profile, logs=cluster.logs_path(out)) as client:
            shared = client.scatter(model, broadcast=True)
            futures = [
                client.submit(predict_file, shared, sha, f, options, pairs[f], key=f"predict-{k}-{Path(f).name}")
                for k, f in enumerate(todo)
            ]
            progress = Progress({"predict": len(todo)})
            for fut in completed(futures, progress, client, profile.worker_timeout):
                r = fut.result()
                results[r["source"]] = r
                for w in r["warnings"]:
                    logger.warning(f"warning: {w}")
                if r["error"]:
                    logger.error(r["error"])
                    failures.append(r["error"])
                else:
                    logger.info(f"{r['source']}: T_pred {r['t_pred_mean']:.4f} -> {outputs(out, r['source'])['xyz']}")
                progress.tick("predict")
    if failures:
        for line in failures:
            logger.error(f"failed: {line}")
        raise EvaluationError(f"{len(failures)} of {len(files)} configuration file(s) failed (listed above)")
    return results
