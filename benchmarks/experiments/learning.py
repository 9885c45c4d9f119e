"""Why T-BOTAN does or does not learn: training recipes side by side on the same data (docs/training.md).

    tbotan run jobs/quickstart.yaml                     # first: the data (any finished store)
    python benchmarks/experiments/learning.py --store storage/quickstart.zarr --recipes baseline standard [--seeds 0 1]
    python benchmarks/experiments/learning.py --store S --recipes standard --set hidden=64 steps=7 --name paper_network

Each (recipe, seed) trains on one thread, two side by side (one per core), on its own copy of the store's data
(models/, predictions/ and report/ are not copied), with `tbotan train` and `tbotan evaluate`; a recipe is a set
of `training` fields over the store's spec's (RECIPES below; ``--set`` overrides fields of every recipe). Training
stops at the epochs of ``--probes`` and resumes (bit-identical to one run), and at each stop the last checkpoint
is probed on the training graphs:

* dead ReLU units per layer (zero on every row of every graph at every step; tbotan.learn.diagnostics);
* the global chain: units of u alive, the spread of T_pred against the labels', and the size of its input
  mean_v h^m: the between-graph standard deviation over the mean (the temperature is a small modulation of it);
* the gradient of the global term L_global with respect to the global chain (MLP + decoder) and to the trunk.

At the end (best-validation checkpoint, test configurations): node Pearson (C_B, A particles) per T, T_pred per T
(and per configuration), the |r_thermal - r_IS| descriptor's Pearson on the same configurations, and S_B(q) of the
prediction over that of MD at the smallest q. And a refit of the temperature head on the frozen trunk: GlobalMLP and
the global decoder trained alone on L_global from the best checkpoint (Adam at lr x global_lr_factor, 300
epochs), on the trunk's fixed mean_v h^m of the training graphs, the refit epoch chosen on the validation graphs'
L_global; its T on each test configuration says whether the trunk carries the temperature of configurations it
was not trained on, whatever the joint training made of the head. Prints one JSON object (``--out FILE``: also
there; ``--record``: also benchmarks/results/learning.json; ``--name NAME``: NAME.json).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml
import zarr

from tbotan.analysis.ceiling import ceiling_rows
from tbotan.analysis.embedding import embedding_spread
from tbotan.data import runs
from tbotan.data.spec import load_spec
from tbotan.learn import diagnostics
from tbotan.learn.checkpoints import build_model, load_checkpoint
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.scoring import graph_terms
from tbotan.learn.train import selection_start

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from quickstart import bars, escape_epoch, prediction_rows, spread  # the quickstart's numbers and bars
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)

NODE_FIRST = {"scaling": "centered", "pretrain_epochs": 25, "pretrain_target": "node"}
RECIPES = {
    "baseline": {},  # the store's spec as it is
    "standard": {"scaling": "standard"},
    "standard_he": {"scaling": "standard", "init": "he"},
    "temperature": {"scaling": "temperature"},
    "edge_temperature": {"scaling": "edge_temperature"},
    "centered": {"scaling": "centered"},
    "centered_node_first": NODE_FIRST,
    "centered_node_first_global_std": {**NODE_FIRST, "global_input": "standardized"},
    "centered_node_first_global_slow": {**NODE_FIRST, "global_lr_factor": 0.1},
    "centered_node_first_global_early_slow": {**NODE_FIRST, "global_start_epoch": 25, "global_lr_factor": 0.1},
    "centered_node_first_global_early": {**NODE_FIRST, "global_start_epoch": 25},
    "temperature_cosine": {"scaling": "temperature", "schedule": "cosine", "warmup_epochs": 5},
    "standard_separate": {"scaling": "standard", "decoder": "separate"},
    "mobility": {"scaling": "mobility"},
    "mobility_cosine": {"scaling": "mobility", "schedule": "cosine", "warmup_epochs": 5},
    "mobility_lr1e-3": {"scaling": "mobility", "lr": 1e-3},
    "standard_cosine": {"scaling": "standard", "schedule": "cosine", "warmup_epochs": 5},
    "standard_pretrain": {"scaling": "standard", "pretrain_epochs": 25},
    "standard_lr1e-3": {"scaling": "standard", "lr": 1e-3},
    "lr1e-3": {"lr": 1e-3},
    "standard_he_cosine": {"scaling": "standard", "init": "he", "schedule": "cosine", "warmup_epochs": 5},
    # the node phase's loss (docs/training.md, "The plateau"), over the store's spec as it is
    "node_mse": {"pretrain_target": "node"},
    "node_mse_lr1e-3": {"pretrain_target": "node", "lr": 1e-3},
    "node_deviation": {"pretrain_target": "deviation"},
    "node_pearson": {"pretrain_target": "pearson"},
    "node_anchored": {"pretrain_target": "anchored"},
    "node_deviation_frozen": {"pretrain_target": "deviation", "switch_trunk_lr_factor": 0.0},
    "node_deviation_readout": {"pretrain_target": "deviation", "pretrain_readout": "fit"},
    # the quickstart's recipe (jobs/quickstart.yaml) on the paper's network in the quickstart's training time
    "paper_network": {"hidden": 64, "steps": 7, "epochs": 70, "switch_epoch": 50, "pretrain_epochs": 50},
    "quickstart_candidate": {
        "pretrain_target": "deviation",
        "pretrain_readout": "fit",
        "global_input": "standardized",
    },
    "node_deviation_readout_global_std": {
        "pretrain_target": "deviation",
        "pretrain_readout": "fit",
        "global_input": "standardized",
    },
    "node_anchored_readout": {"pretrain_target": "anchored", "pretrain_readout": "fit"},
    # deviations first, then L_MSE and L_edge (the graphs' means carry the temperature into the trunk), then the switch
    "deviation_then_mse": {"pretrain_target": "deviation", "pretrain_readout": "fit", "pretrain_epochs": 100},
    "deviation_then_mse_global": {
        "pretrain_target": "deviation",
        "pretrain_readout": "fit",
        "pretrain_epochs": 100,
        "global_start_epoch": 100,
    },
}


def parse_value(text: str):
    return yaml.safe_load(text)


def probe(spec_path: Path, store: Path, seed: int, graphs) -> dict:
    """Dead units, the global chain and its gradients at the last checkpoint of ``seed``."""
    spec = load_spec(spec_path)
    ck = load_checkpoint(runs.model_dir(store, spec, "both", None, seed) / "last.pt")
    model = build_model(ck["shape"])
    model.load_state_dict(ck["model"])
    model.eval()
    dead = diagnostics.dead_units(model, graphs, "both")
    inputs = []
    hook = model.global_mlp[0].register_forward_pre_hook(lambda m, a: inputs.append(a[0][model.hidden :].clone()))
    with torch.no_grad():
        preds = [float(model(g.species, g.edges, edge_features(g, "both")).t) for g in graphs]
    hook.remove()
    mean_h = torch.stack(inputs).reshape(len(graphs), model.steps, model.hidden).numpy()  # (graphs, steps, hidden)
    size = np.abs(mean_h.mean(axis=0)).mean()
    between = mean_h.std(axis=0).mean()
    u = diagnostics.embeddings(model, graphs, "both")
    alive, spread = embedding_spread(u, [g.temperature for g in graphs])
    chain = [p for n, p in model.named_parameters() if n.startswith(("global_mlp", "global_decoder"))]
    trunk = [p for n, p in model.named_parameters() if n.startswith(("node_", "edge_"))]
    g_chain, g_trunk = np.zeros(len(chain)), np.zeros(len(trunk))
    for g in graphs:
        model.zero_grad()
        graph_terms(model, g, "both")["global"].backward()
        g_chain += [float(p.grad.norm()) ** 2 if p.grad is not None else 0.0 for p in chain]
        g_trunk += [float(p.grad.norm()) ** 2 if p.grad is not None else 0.0 for p in trunk]
    labels = np.array([g.temperature for g in graphs])
    return {
        "epoch": ck["epoch"],
        "dead_units": {name: list(v) for name, v in dead.items()},
        "dead_total": [sum(v[0] for v in dead.values()), sum(v[1] for v in dead.values())],
        "u_alive": alive,
        "u_spread": spread,
        "t_pred_spread": float(np.std(preds)),
        "t_label_spread": float(np.std(labels)),
        "t_pred_by_T": {f"{T:g}": float(np.mean(np.array(preds)[labels == T])) for T in np.unique(labels)},
        "global_input_relative_spread": float(between / size) if size > 0 else float("nan"),
        "grad_global_term_chain": float(np.sqrt(g_chain.sum() / len(graphs))),
        "grad_global_term_trunk": float(np.sqrt(g_trunk.sum() / len(graphs))),
        "train_mse": ck["history"][-1]["train"]["mse"],
        "validation": ck["history"][-1]["validation"]["objective"],
    }


def head_refit(spec_path: Path, store: Path, seed: int, train_graphs, epochs: int = 300) -> dict:
    """The temperature head refitted on the frozen trunk of the best checkpoint (module docstring), on
    ``train_graphs``: per test T, T read on each configuration; the refit's best epoch and validation MSE."""
    spec = load_spec(spec_path)
    t = spec.training
    ck = load_checkpoint(runs.model_dir(store, spec, "both", None, seed) / "best.pt")
    model = build_model(ck["shape"])
    model.load_state_dict(ck["model"])

    def inputs(graphs):
        with torch.no_grad():
            x = [model(g.species, g.edges, edge_features(g, "both")).global_inputs for g in graphs]
        return x, [g.temperature for g in graphs]

    def split(s, temperatures):
        return load_graphs(store, temperatures, split=s, target=t.target)

    (x, y), (xv, yv) = inputs(train_graphs), inputs(split(1, t.temperatures))
    head = [*model.global_mlp.parameters(), *model.global_decoder.parameters()]
    opt = torch.optim.Adam(head, lr=t.lr * t.global_lr_factor)
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, state = float("inf"), 0, None
    for epoch in range(epochs):
        for i in torch.randperm(len(x), generator=gen).tolist():
            opt.zero_grad()
            ((model.temperature(model.global_path(x[i])) - y[i]) ** 2).backward()
            torch.nn.utils.clip_grad_norm_(head, t.clip)
            opt.step()
        with torch.no_grad():
            val = float(np.mean([(float(model.temperature(model.global_path(a))) - b) ** 2 for a, b in zip(xv, yv)]))
        if val < best:
            best, best_epoch, state = val, epoch + 1, [p.detach().clone() for p in head]
    with torch.no_grad():
        for p, s in zip(head, state):
            p.copy_(s)
        reads = {}
        for T in spec.temperatures:
            xt, _ = inputs(split(2, [T]))
            reads[f"{T:g}"] = [round(float(model.temperature(model.global_path(a))), 4) for a in xt]
    return {"best_refit_epoch": best_epoch, "refit_epochs": epochs, "validation_mse": best, "T_read": reads}


def sb_ratio(root, seed: int) -> dict:
    """S_B(q) of the prediction over MD's, at the smallest q bin, per T (mean over the test configurations)."""
    out = {}
    for _, tg in sorted(root[runs.predictions_path("both", seed)].groups()):
        md, pred = tg["sb_md"][:], tg["sb_pred"][:]
        out[f"{float(tg.attrs['T']):g}"] = float(np.mean(pred[:, 0]) / np.mean(md[:, 0]))
    return out


def run_one(
    store: str, spec: dict, name: str, overrides: dict, seed: int, probes: list[int], work: Path, refit: bool = True
) -> dict:
    here = work / f"{name}_seed{seed}_{Path(store).stem}"
    copy = here / "store.zarr"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns(runs.MODELS, runs.PREDICTIONS, "report"))
    spec = {**spec, "training": {**spec["training"], **overrides}}
    spec_path = here / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lam = spec["training"]["lambda_g"]
    args = [str(spec_path), "--store", str(copy), "--seeds", str(seed), "--variant", "both"]
    args += ["--lambda-g", str(lam[0] if isinstance(lam, list) else lam)]
    torch.set_num_threads(1)
    train_graphs = load_graphs(copy, spec["training"]["temperatures"], split=0, target=spec["training"]["target"])
    epochs = spec["training"]["epochs"]
    stops = sorted({e for e in probes if e < epochs} | {epochs})
    probed, train_s = [], 0.0
    for stop in stops:
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "tbotan", "train", "-q", *args, "--epochs", str(stop)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{name} seed {seed}: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        train_s += time.perf_counter() - start
        probed.append(probe(spec_path, copy, seed, train_graphs))
    subprocess.run([sys.executable, "-m", "tbotan", "evaluate", *args], env=env, check=True, capture_output=True)
    root = zarr.open_group(str(copy), mode="r")
    keep = ("T", "trained", "pearson_node_A", "pearson_node_A_sem", "T_pred", "T_pred_std", "test_configurations")
    rows = [{k: r[k] for k in keep} for r in prediction_rows(root[f"{runs.PREDICTIONS}/both"])]
    for r in rows:
        tg = root[f"{runs.predictions_path('both', seed)}/T{r['T']:.3f}"]
        r["T_pred_each"] = [round(float(v), 4) for v in tg["t_pred"][:]]
    best_epoch = root[runs.predictions_path("both", seed)].attrs.get("best_epoch")
    history = load_checkpoint(runs.model_dir(copy, load_spec(spec_path), "both", None, seed) / runs.LAST)["history"]
    rho = [h["validation"]["pearson_A"] for h in history]
    objective = [h["validation"]["objective"] for h in history]
    return {
        "recipe": name,
        "store": store,
        "seed": seed,
        "first_epoch_validation_rho_A_0.2": escape_epoch(history),
        # the checkpoint kept (best.pt: highest validation rho_A after selection_start) beside the one the old
        # criterion (lowest validation objective over every epoch) would have kept
        "best_validation_rho_A_in_window": max(rho[selection_start(spec["training"]["switch_epoch"], len(rho)) :]),
        "kept_validation_rho_A": rho[best_epoch - 1] if best_epoch else None,
        "temperature_head_last_epoch": history[-1]["temperature_head"],
        "objective_pick_validation_rho_A": rho[min(range(len(rho)), key=lambda i: objective[i])],
        "overrides": overrides,
        "train_s": round(train_s, 1),
        "rows": rows,
        "best_epoch": best_epoch,
        "validation_by_epoch": {  # every epoch's validation: node Pearson (A) and the objective (every term on)
            "pearson_A": [round(h["validation"]["pearson_A"], 3) for h in history],
            "objective": [round(h["validation"]["objective"], 4) for h in history],
        },
        "sb_pred_over_md_smallest_q": sb_ratio(root, seed),
        "probes": probed,
        "head_refit": head_refit(spec_path, copy, seed, train_graphs) if refit else None,
    }


def summary(results: list[dict], training: dict, descriptor: dict) -> dict:
    """Per recipe, over every (draw, seed): the escape epochs, the test numbers' spread and the quickstart's bars
    (benchmarks/experiments/quickstart.py ``bars``; ``descriptor``: per store, the descriptor regression's rho by T)."""
    out = {}
    for name in dict.fromkeys(r["recipe"] for r in results):
        mine = [r for r in results if r["recipe"] == name]
        own = {**training, **mine[0]["overrides"]}  # the recipe's own switch epoch and temperatures
        per_run = [
            {
                "escape": r["first_epoch_validation_rho_A_0.2"],
                "rows": {float(x["T"]): x for x in r["rows"]},  # the run's own seed's
                "descriptor": descriptor[r["store"]],
            }
            for r in mine
        ]
        stores = list(dict.fromkeys(r["store"] for r in mine))
        temps = sorted(per_run[0]["rows"])
        out[name] = {
            "first_epoch_rho_0.2": [r["escape"] for r in per_run],
            "bars": bars(per_run, own),
            "by_T": {
                f"{T:g}": {
                    key: spread([[x["rows"][T][key] for x, r in zip(per_run, mine) if r["store"] == s] for s in stores])
                    for key in ("pearson_node_A", "T_pred")
                }
                for T in temps
            },
        }
    return out


def summarised(results: list[dict], training: dict, regression: dict) -> dict:
    """``summary``, or the error that stopped it (the runs are kept either way: they took the time)."""
    try:
        return summary(results, training, regression)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", nargs="+", default=["storage/quickstart.zarr"], help="one or more data draws")
    p.add_argument("--recipes", nargs="+", default=["baseline", "standard"], choices=sorted(RECIPES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="training fields for every recipe")
    p.add_argument("--probes", type=int, nargs="*", default=[1, 10, 25, 50, 75, 100], help="epochs to probe at")
    p.add_argument("--no-refit", action="store_true", help="skip the temperature head's refit on the frozen trunk")
    add_arguments(p, "learning")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    specs = {s: zarr.open_group(s, mode="r").attrs["spec"] for s in args.store}
    spec = specs[args.store[0]]
    common = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    ceiling = {s: ceiling_rows(zarr.open_group(s, mode="r")) for s in args.store}  # each store once
    descriptor = {s: {f"{r['T']:g}": r["is_distance_rho"] for r in rows} for s, rows in ceiling.items()}
    regression = {s: {r["T"]: r["descriptor_rho"] for r in rows} for s, rows in ceiling.items()}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=args.workers) as pool:
        jobs = [
            pool.submit(
                run_one, store, specs[store], r, {**RECIPES[r], **common}, s, args.probes, Path(tmp), not args.no_refit
            )
            for r in args.recipes
            for store in args.store
            for s in args.seeds
        ]
        results = [j.result() for j in jobs]
    training = {**spec["training"], **common}
    emit(
        "learning",
        {
            "store": args.store,
            "data_seeds": {s: specs[s]["seed"] for s in args.store},
            "N": spec["N"],
            "training": training,
            "threads_per_training": 1,
            "descriptor_abs_dr_pearson_A": descriptor,
            "descriptor_regression_pearson_A": regression,
            "summary": summarised(results, training, regression),
            "runs": results,
        },
        args,
    )


if __name__ == "__main__":
    main()
