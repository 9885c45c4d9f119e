"""The ``tbotan`` command line (docs/method.md §8.3).

One job, although over 500 lines: the argument parser and one thin handler per subcommand, each importing its
stage only when called, so that a command starts without loading what it does not use (tests/test_layers.py).

Pipeline:
    tbotan validate SPEC
    tbotan simulate SPEC [--store PATH] [--cluster PROFILE]
    tbotan status STORE [--json]
    tbotan train SPEC [--store PATH] [--variant V] [--lambda-g X] [--seeds S ...] [--epochs E]
    tbotan evaluate SPEC [--store PATH] [--variant V] [--lambda-g X]
    tbotan report --store PATH [--partial]
    tbotan run SPEC [--store PATH] [--cluster PROFILE] [--ranks P]     (simulate, train, evaluate, report)
    tbotan import botan|glassbench|bapst DIR --store PATH [--cluster PROFILE] [--validation V]
    tbotan export glassbench STORE DIR
    tbotan export model STORE OUT [--variant V] [--lambda-g X]
    tbotan export xyz STORE T C OUT
    tbotan predict MODEL CONFIG... [--out DIR] [--cluster PROFILE] [--variant V] [--types 1=A,2=B] [--inherent FILE]

Physics tools (reduced units, extended XYZ in and out):
    tbotan energy FILE [--json]
    tbotan quench IN OUT [--tolerance 1e-12] [--max-steps N] [--platform NAME] [--json]
    tbotan tau --temperature T --N N [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

import numpy as np

from .. import __version__, core
from ..core import CUTOFF_AA
from ..errors import TbotanError, Terminated

MIN_DISTANCE = 0.5  # sigma_AA: closer pairs are overlaps that blow up any dynamics


def _check_overlaps(conf, path) -> None:
    # SciPy's periodic k-d tree rather than vesin: vesin imports torch when it is installed (1.5 s of a
    # 2 s start), and the physics tools start without the learning stack.
    from scipy.spatial import cKDTree

    from ..errors import ConfigurationError

    x = core.wrap(conf.positions, conf.box)
    pairs = cKDTree(x, boxsize=conf.box).query_pairs(MIN_DISTANCE, output_type="ndarray")
    if len(pairs):
        d = np.linalg.norm(core.minimum_image(x[pairs[:, 1]] - x[pairs[:, 0]], conf.box), axis=1)
        k = int(np.argmin(d))
        i, j = sorted(pairs[k])
        raise ConfigurationError(
            f"{path}: particles {i} and {j} overlap (r = {d[k]:.3g} < {MIN_DISTANCE} sigma_AA); {len(pairs)} such pairs"
        )


def _load(path):
    from ..md import xyz

    conf = xyz.read(path)
    if conf.box <= 2 * CUTOFF_AA:
        raise xyz.ConfigurationError(
            f"{path}: box {conf.box:g} is shorter than twice the A-A cutoff ({2 * CUTOFF_AA:g})"
        )
    _check_overlaps(conf, path)
    return conf


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


def cmd_energy(args) -> None:
    from ..md import engine

    conf = _load(args.file)
    e, f = engine.energy_and_forces(conf.types, conf.positions, conf.box)
    _print(
        {
            "energy_per_particle": e / len(conf.types),
            "mean_force": engine.mean_force(f),
            "N": len(conf.types),
            "box": conf.box,
            "platform": engine.choose_platform("double").describe(),
        },
        args.json,
    )


def cmd_quench(args) -> None:
    from ..md import fire, xyz

    conf = _load(args.input)
    params = fire.FireParameters(tolerance=args.tolerance, max_steps=args.max_steps)
    result = fire.quench(conf.types, conf.positions, conf.box, params, platform=args.platform)
    xyz.write(
        args.output,
        conf.types,
        core.wrap(result.positions, conf.box),
        conf.box,
        comment=f"energy_per_particle={result.energy_per_particle!r} mean_force={result.mean_force!r}",
    )
    _print(result.summary(), args.json)


def cmd_tau(args) -> None:
    from ..data.spec import parse_spec
    from ..md import relaxation

    given = {"friction": args.friction, "time_constant": args.time_constant}
    given["zero_sum_noise"] = False if args.independent_noise else None
    motion = {"kind": args.dynamics, **{k: v for k, v in given.items() if v is not None}}
    fields = {"N": args.N, "temperatures": [args.temperature], "tau_alpha": "measure", "dynamics": motion}
    spec = parse_spec(fields, "tbotan tau")  # the spec's checks of N, T and the dynamics
    result = relaxation.measure_tau_alpha(
        args.temperature,
        args.N,
        seed=args.seed,
        dt=args.dt,
        platform=args.platform,
        dynamics=spec.dynamics.parameters(),
    )
    if not args.json:
        result = {k: v for k, v in result.items() if k not in ("fs", "fs_times")}
    _print(result, args.json)


def default_store(spec_path) -> str:
    from pathlib import Path

    return str(Path("storage") / (Path(spec_path).stem + ".zarr"))


def cmd_validate(args) -> None:
    from ..data.spec import load_spec

    spec = load_spec(args.spec)
    if spec.source is not None:
        print(
            f"{args.spec}: valid. N={spec.N}, T={spec.temperatures}, imports the {spec.source.format} data set "
            f"from {spec.source.path} (its files set the configurations, runs and times), training on "
            f"{spec.training_temperatures} with target {spec.training.target}"
        )
        return
    counts = ", ".join(f"{t}: {spec.configurations_for(t)}" for t in spec.temperatures)
    print(
        f"{args.spec}: valid. N={spec.N}, T={spec.temperatures}, configurations {{{counts}}}, "
        f"K={spec.replicas}, tau_alpha {'measured' if spec.measure_tau else 'given'}, "
        f"training on {spec.training_temperatures}"
    )


def cmd_plan(args) -> None:
    from .. import plan
    from ..hpc.cluster import load_profile

    if args.calibrate:
        plan.calibrate(args.rates)
        if args.spec is None:
            return
    if args.spec is None:
        raise SystemExit("tbotan plan: give a job spec (or --calibrate alone)")
    from ..data.spec import load_spec

    spec = load_spec(args.spec)  # an invalid spec: its validation errors
    profile = load_profile(args.cluster) if args.cluster else None
    p = plan.plan(spec, profile, plan.load_rates(args.rates), workers=args.workers)
    if args.rates is None and not plan.rates_path().exists():  # not calibrated here: the range over machines
        slow = plan.plan(spec, profile, plan.load_rates(plan.SLOWEST_RATES), workers=args.workers)
        p["wall_seconds_slowest_machine"] = slow["wall_seconds"]
    print(json.dumps(p, indent=1, default=float) if args.json else plan.describe(p))


def cmd_simulate(args) -> None:
    from pathlib import Path

    from ..data.spec import load_spec
    from .run import make_data

    spec = load_spec(args.spec)  # a bad spec fails here, before any cluster starts
    result = make_data(spec, Path(args.store or default_store(args.spec)), args.cluster)
    _print_status(result["summary"])


def cmd_import(args) -> None:
    from pathlib import Path

    from ..data import datasets, importers
    from ..data.driver import on_cluster
    from ..data.spec import parse_spec

    catalogue = datasets.scan(args.format, args.dir)  # a folder that is not the data set fails before any cluster
    spec = parse_spec(
        {
            "N": catalogue.N,
            "temperatures": sorted(catalogue.configurations),
            "source": {"format": args.format, "path": str(args.dir), "validation": args.validation},
        }
    )
    result = on_cluster(importers.import_data, spec, Path(args.store), args.cluster)
    _print_status(result["summary"])


EXPORT_ARGUMENTS = {"glassbench": ("STORE", "DIR"), "model": ("STORE", "OUT"), "xyz": ("STORE", "T", "C", "OUT")}


def cmd_export(args) -> None:
    names = EXPORT_ARGUMENTS[args.format]
    if len(args.paths) != len(names):
        raise SystemExit(f"tbotan export {args.format}: expected {' '.join(names)}, got {' '.join(args.paths)!r}")
    if args.format == "glassbench":
        from ..data.export import export_glassbench

        counts = export_glassbench(*args.paths)
        for T, c in counts.items():
            print(f"T={T:g}: {c['train']} train, {c['test']} test files")
    elif args.format == "model":
        from ..learn.portable import export_model
        from ..predict import store_spec

        store, out = args.paths
        model = export_model(store, store_spec(store), out, variant=args.variant or "both", lambda_g=args.lambda_g)
        print(
            f"{out}: {model['name']}, seeds {sorted(model['seeds'])}, trained on T = {model['training_temperatures']}"
        )
    else:
        from ..data.export_xyz import export_xyz

        store, T, c, out = args.paths
        try:
            T, c = float(T), int(c)
        except ValueError:
            raise SystemExit(f"tbotan export xyz: T must be a number and C an integer, got {T!r} {c!r}") from None
        print(export_xyz(store, T, c, out))


def cmd_predict(args) -> None:
    from ..data.configurations import parse_types
    from ..predict import predict_files

    predict_files(
        args.model,
        args.configurations,
        out_dir=args.out,
        variant=args.variant,
        types=parse_types(args.types),
        inherent=args.inherent,
        cluster_profile=args.cluster,
        tolerance=args.tolerance,
        max_steps=args.max_steps,
    )


def _print_status(rows) -> None:
    print(
        f"{'T':>7} {'done':>9} {'equil.':>7} {'tau_alpha':>10} {'source':>9} {'F_s(tau)':>9} {'U/N':>8} {'P':>7} "
        f"{'worst FIRE':>11} {'time (s)':>9}  errors"
    )
    for r in rows:
        tau = f"{r['tau_alpha']:.4g}" if r["tau_alpha"] is not None else "-"
        res = f"{r['worst_fire_residual']:.2e}" if r["worst_fire_residual"] is not None else "-"
        check = r.get("alpha_time")
        fs = f"{check['fs_at_tau']:.3f}{'' if check['ok'] else ' !'}" if check else "-"
        u = f"{r['energy']:.4f}" if r.get("energy") is not None else "-"
        p = f"{r['pressure']:.3f}" if r.get("pressure") is not None else "-"
        print(
            f"{r['T']:>7.3f} {r['done']:>4}/{r['configurations']:<4} {r['equilibrated']:>7} {tau:>10} "
            f"{r['tau_alpha_source']:>9} {fs:>9} {u:>8} {p:>7} {res:>11} {r['wall_time_s']:>9.1f}  {len(r['errors'])}"
        )
        for c, msg in sorted(r["errors"].items(), key=lambda kv: int(kv[0])):
            print(f"        configuration {c}: {msg}")
    for r in rows:
        if r.get("alpha_time") and not r["alpha_time"]["ok"]:
            print(f"  ! {r['alpha_time']['message']}")
    left = sum(r["left"] for r in rows)
    print("complete" if not left else f"{left} configurations left")


def later_stages(store_path) -> dict:
    """Training, evaluation and report state of a store: {"models": [...], "predictions": [...], "report": ...,
    "warnings": [...]}.

    Each model: variant, seed, epochs (of the spec's), best_epoch, best_validation_rho_A (the validation rho_A of
    the epoch ``best.pt`` holds), best_validation_objective, the last epoch's temperature_head, and ``plateau``:
    tbotan.data.runs.plateau_message for the spec's switch epoch (None unless the training sat on the plateau).
    ``warnings`` gathers those messages, each naming its run and seed."""
    from pathlib import Path

    from ..data import runs, store

    path = Path(store_path)
    root = store.open_store(path)
    training = (root.attrs.get("spec") or {}).get("training", {})
    spec_epochs, switch_epoch = training.get("epochs"), training.get("switch_epoch") or 0
    models, warnings = [], []
    for hist in runs.histories(path):
        h = json.loads(hist.read_text())
        best = [x for x in h if x.get("best")]
        rho = best[-1]["validation"].get("pearson_A") if best else None
        seed = hist.parent.name
        number = int(seed[4:]) if seed[4:].isdigit() else seed[4:]
        plateau = runs.plateau_message(number, h, switch_epoch)
        if plateau:
            warnings.append(f"{hist.parent.parent.name} {plateau}")
        models.append(
            {
                "variant": hist.parent.parent.name,
                "seed": seed,
                "epochs": len(h),
                "of": spec_epochs,
                "best_epoch": best[-1]["epoch"] if best else None,
                "best_validation_rho_A": rho,
                "best_validation_objective": best[-1]["validation"]["objective"] if best else None,
                "temperature_head": h[-1].get("temperature_head") if h else None,
                "plateau": plateau,
            }
        )
    predictions = []
    if runs.PREDICTIONS in root:
        for name, grp in sorted(root[runs.PREDICTIONS].groups()):
            for seed, sg in sorted(grp.groups()):
                predictions.append({"variant": name, "seed": seed, "complete": bool(sg.attrs.get("complete"))})
    report = None
    for folder in ("report", "report_partial"):
        if (path / folder / "index.html").exists():
            report = str(path / folder / "index.html")
            break
    return {"models": models, "predictions": predictions, "report": report, "warnings": warnings}


def cmd_status(args) -> None:
    from ..data import store

    rows = store.summary(store.open_store(args.store))
    later = later_stages(args.store)
    if args.json:
        print(json.dumps({"simulate": rows, **later}))
        return
    _print_status(rows)
    for m in later["models"]:
        rho = m["best_validation_rho_A"]
        best = (
            f"best validation rho_A {rho:.3f} at epoch {m['best_epoch']}" if m["best_epoch"] and rho is not None else ""
        )
        head = m["temperature_head"]
        if head and head["dead"]:
            best += f" | {head['message']}"
        elif head and head["label_spread"] > 0:
            best += f" | T head: slope {head.get('slope', float('nan')):.2f} against the labels"
            best += f", u {head['u_alive']}/{head['hidden']} alive"
        print(f"train    {m['variant']} {m['seed']}: epoch {m['epochs']}/{m['of']} {best}")
    if not later["models"]:
        print("train    nothing trained yet (`tbotan train`)")
    for w in later["warnings"]:
        print(f"  ! {w}")
    for p in later["predictions"]:
        state = "complete" if p["complete"] else "INCOMPLETE (rerun `tbotan evaluate`)"
        print(f"evaluate {p['variant']} {p['seed']}: {state}")
    print(f"report   {later['report'] or 'not made yet (`tbotan report`)'}")


def cmd_train(args) -> None:
    from ..data.runs import runs
    from ..data.spec import load_spec
    from ..learn.distributed import session
    from ..learn.train import train

    spec = load_spec(args.spec)
    store_path = args.store or default_store(args.spec)
    with session():
        for variant, lambda_g in runs(spec, args.variant, args.lambda_g):
            train(
                spec,
                store_path,
                variant=variant,
                lambda_g=lambda_g,
                seeds=args.seeds,
                graphs_per_step=args.graphs_per_step,
                epochs=args.epochs,
            )


def cmd_evaluate(args) -> None:
    from ..data.runs import runs
    from ..data.spec import load_spec
    from ..learn.distributed import session
    from ..learn.evaluate import evaluate

    spec = load_spec(args.spec)
    store_path = args.store or default_store(args.spec)
    with session():
        for variant, lambda_g in runs(spec, args.variant, args.lambda_g):
            evaluate(spec, store_path, variant=variant, lambda_g=lambda_g, seeds=args.seeds, force=args.force)


def cmd_report(args) -> None:
    from ..analysis.report import write_report

    write_report(args.store, allow_partial=args.partial)


def cmd_run(args) -> None:
    from . import run

    run.run(
        args.spec, store_path=args.store or default_store(args.spec), cluster_profile=args.cluster, ranks=args.ranks
    )


def _model_arguments(s) -> None:
    """What `train` and `evaluate` share: the spec, the store, and which variants, lambda_g and seeds."""
    s.add_argument("spec", help="job spec (YAML)")
    s.add_argument("--store", help="Zarr store (default storage/<spec stem>.zarr); models in <store>/models/")
    s.add_argument("--variant", choices=["both", "inherent", "thermal"], help="only this variant (default: the spec's)")
    s.add_argument("--lambda-g", type=float, default=None, help="only this lambda_g (default: the spec's values)")
    s.add_argument("--seeds", type=int, nargs="+", default=None, help="seed ids (default 0..seeds-1)")


TRAIN_HELP = (
    "train T-BOTAN on a store (every seed, variant and lambda_g of the spec; resumes from checkpoints; "
    "under torchrun/srun the seeds share the ranks)"
)
EVALUATE_HELP = (
    "predict the test configurations of every temperature with each seed's best checkpoint; writes "
    "<store>/predictions/ (under torchrun/srun the work is shared)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tbotan", description="T-BOTAN: glassy dynamics from static structure.")
    p.add_argument("--version", action="version", version=f"tbotan {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    loud = argparse.ArgumentParser(add_help=False)  # --quiet / --verbose, accepted by every subcommand
    group = loud.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    group.add_argument("-v", "--verbose", action="store_true", help="also debug lines")

    s = sub.add_parser("validate", parents=[loud], help="check a job spec; every mistake is reported with its field")
    s.add_argument("spec", help="job spec (YAML)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser(
        "plan", parents=[loud], help="the predicted cost of a job spec (each stage, store, memory, wall time)"
    )
    s.add_argument("spec", nargs="?", help="job spec (YAML)")
    s.add_argument("--cluster", help="cluster profile (YAML; default: this machine, as `tbotan run` uses it)")
    s.add_argument("--workers", type=int, help="workers to plan for (an MPI profile's: mpirun -n minus 2)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--calibrate", action="store_true", help="measure this machine's rates first (about a minute)")
    s.add_argument("--rates", help="rates file (default: this machine's from --calibrate, else the reference's)")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("simulate", parents=[loud], help="generate (or resume) the data of a job spec into a Zarr store")
    s.add_argument("spec", help="job spec (YAML)")
    s.add_argument("--store", help="Zarr store (default storage/<spec stem>.zarr)")
    s.add_argument("--cluster", help="cluster profile (YAML, e.g. hpc/slurm-cpu.yaml; default: a LocalCluster)")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("status", parents=[loud], help="what is done and what is left in a store, per temperature")
    s.add_argument("store", help="Zarr store")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("train", parents=[loud], help=TRAIN_HELP)
    _model_arguments(s)
    s.add_argument("--epochs", type=int, default=None, help="stop after this many epochs (default: the spec's)")
    s.add_argument("--graphs-per-step", type=int, default=1, help="graphs per step and rank (default 1)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", parents=[loud], help=EVALUATE_HELP)
    _model_arguments(s)
    s.add_argument("--force", action="store_true", help="recompute predictions that are up to date")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser(
        "report", parents=[loud], help="figures and numbers of the paper for a store: <store>/report/index.html"
    )
    s.add_argument("--store", required=True, help="Zarr store with predictions (`tbotan evaluate`)")
    s.add_argument(
        "--partial",
        action="store_true",
        help="report what exists (into report_partial/) when some "
        "variants or seeds are missing; report/ is left as it is",
    )
    s.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "import",
        parents=[loud],
        help="import a published data set (BOTAN's, GlassBench's, Bapst et al.'s) into a store",
    )
    s.add_argument("format", choices=["botan", "glassbench", "bapst"], help="the data set's layout (docs/method.md §7)")
    s.add_argument("dir", help="its root folder (T<T>/train/..., T<T>/test/...; bapst: **/train/, **/test/)")
    s.add_argument("--store", required=True, help="Zarr store to make (or finish)")
    s.add_argument("--cluster", help="cluster profile for the FIRE quenches (default: a LocalCluster)")
    s.add_argument(
        "--validation",
        type=lambda x: int(x) if x.isdigit() else float(x),
        default=0.1,
        help="share of each temperature's train files kept for validation (count or fraction; default 0.1)",
    )
    s.set_defaults(func=cmd_import)

    s = sub.add_parser(
        "export", parents=[loud], help="write a store in another layout (GlassBench's), its model, or a configuration"
    )
    s.add_argument(
        "format",
        choices=sorted(EXPORT_ARGUMENTS),
        help="glassbench STORE DIR: GlassBench's layout; model STORE OUT: the trained model as one portable file "
        "(docs/predict.md); xyz STORE T C OUT: configuration C at T as extended XYZ with its inherent structure",
    )
    s.add_argument("paths", nargs="+", metavar="ARG", help="the format's arguments (above)")
    s.add_argument("--variant", choices=["both", "inherent", "thermal"], help="model: the run (default both)")
    s.add_argument("--lambda-g", type=float, default=None, help="model: the run's lambda_g (default: the spec's)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "predict",
        parents=[loud],
        help="predict C_B, E_jk and T of configurations from any file with a trained model (docs/predict.md)",
    )
    s.add_argument("model", help="a model file (`tbotan export model`) or a store with trained models")
    s.add_argument(
        "configurations",
        nargs="+",
        metavar="CONFIG",
        help="extended XYZ, LAMMPS dump/data, GlassBench/BOTAN .npz, .pkl",
    )
    s.add_argument("--out", default="predictions", help="output folder (default predictions/)")
    s.add_argument("--cluster", help="cluster profile (YAML; default: a LocalCluster)")
    s.add_argument(
        "--variant", choices=["both", "inherent", "thermal"], help="a store's run (default both); a file's must match"
    )
    s.add_argument("--types", help="species map, e.g. 1=A,2=B (default: A/B, or 0/1 or 1/2 with the commoner as A)")
    s.add_argument(
        "--inherent", action="append", metavar="FILE", help="inherent structure of each CONFIG, in order (repeat)"
    )
    s.add_argument("--tolerance", type=float, default=1e-12, help="FIRE's mean force per particle (default 1e-12)")
    s.add_argument("--max-steps", type=int, default=500_000, help="FIRE's step limit")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser(
        "run", parents=[loud], help="the whole pipeline: simulate, train, evaluate, report (resumes what is unfinished)"
    )
    s.add_argument("spec", help="job spec (YAML)")
    s.add_argument("--store", help="Zarr store (default storage/<spec stem>.zarr)")
    s.add_argument("--cluster", help="cluster profile for the simulation (default: a LocalCluster)")
    s.add_argument(
        "--ranks",
        type=int,
        default=None,
        help="training processes (torch.distributed, gloo on CPU); default: one per seed, at most one per CPU core",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "energy",
        parents=[loud],
        help="potential energy per particle and mean force of a configuration (double precision)",
    )
    s.add_argument("file", help="extended XYZ configuration")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_energy)

    s = sub.add_parser(
        "quench", parents=[loud], help="FIRE inherent structure of a configuration (docs/method.md §2.2)"
    )
    s.add_argument("input", help="extended XYZ configuration")
    s.add_argument("output", help="where to write the inherent structure (extended XYZ, 17 digits)")
    s.add_argument("--tolerance", type=float, default=1e-12, help="mean force per particle to reach (default 1e-12)")
    s.add_argument("--max-steps", type=int, default=500_000, help="give up (with an error) after this many steps")
    s.add_argument(
        "--platform",
        default=None,
        choices=["CPU", "CUDA", "HIP", "OpenCL", "Reference"],
        help="platform of the bulk of the quench (CUDA, HIP, OpenCL in double; CPU in single); the end and the "
        "residual are always Reference's (default: auto: CUDA, HIP, OpenCL on a GPU, else CPU)",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_quench)

    s = sub.add_parser(
        "tau", parents=[loud], help="equilibrate at T and measure tau_alpha from F_s(q, t) of A particles"
    )
    s.add_argument("--temperature", type=float, required=True, help="reduced temperature")
    s.add_argument("--N", type=int, required=True, help="number of particles (80%% A)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dt", type=float, default=0.005, help="MD time step (reduced units)")
    s.add_argument(
        "--platform",
        default=None,
        choices=["CPU", "CUDA", "HIP", "OpenCL"],
        help="OpenMM platform for MD (default: auto: CUDA, HIP, OpenCL on a GPU, else CPU)",
    )
    s.add_argument(
        "--dynamics", default="nve", help="the production run's dynamics: nve, nose-hoover or langevin (as in a spec)"
    )
    s.add_argument("--friction", type=float, default=None, help="langevin: friction per tau_LJ (default 1)")
    s.add_argument("--time-constant", type=float, default=None, help="nose-hoover: time constant (default 0.5)")
    s.add_argument(
        "--independent-noise", action="store_true", help="langevin: OpenMM's noise (default: zero-sum, momentum kept)"
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_tau)
    return p


class _Stdout(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stdout`` is at the time of each record (pytest's capsys,
    a redirected stream), so that a handler set up once never writes to a closed stream."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Progress and results of every stage as plain lines on stdout (the ``tbotan`` logger, INFO); --quiet keeps
    only warnings, --verbose adds debug lines. Calling it again replaces the earlier setting."""
    logger = logging.getLogger("tbotan")
    for h in [h for h in logger.handlers if isinstance(h, _Stdout)]:
        logger.removeHandler(h)
    handler = _Stdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet, args.verbose)
    if getattr(args, "temperature", 1.0) <= 0 or getattr(args, "N", 1) <= 0:
        print("tbotan: error: temperature and N must be positive", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):  # unwind (locks released, clusters closed) instead of dying
        signal.signal(signum, _terminate)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit then fails the write (EFBIG), named
    try:
        args.func(args)
    except Terminated as e:
        print(f"tbotan {args.command}: {e}", file=sys.stderr)
        return 128 + e.signum
    except TbotanError as e:  # an expected failure: one line naming the cause; anything else is a bug (traceback)
        print(f"tbotan {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


def _terminate(signum, frame):
    signal.signal(signum, signal.SIG_DFL)  # a second signal kills at once
    raise Terminated(signum)


if __name__ == "__main__":
    sys.exit(main())
