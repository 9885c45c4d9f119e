"""`tbotan plan` against a real run on this machine: the plan's wall times beside the stage times measured.

    python benchmarks/planner/plan_check.py [--spec jobs/quickstart.yaml] [--calibrate] [--store /tmp/plan_check.zarr]
    python benchmarks/planner/plan_check.py --measured EARLIER.json   # re-plan against that run's times

Calibrates first with ``--calibrate`` (else uses this machine's kept rates), plans the spec for this machine, runs
``tbotan run SPEC`` into a fresh store, and compares the simulate and train stages and the total with the plan
(ratio = measured / planned). ``--measured`` takes the measured stage times of an earlier run of this script (e.g.
benchmarks/results/plan_check_run.json) instead of running again (they are copied into the result, with that run's
command). Prints one JSON object (``--out FILE``: also there; ``--record``: also benchmarks/results/plan_check.json;
``--name NAME``: NAME.json).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import zarr

from tbotan import plan
from tbotan.data.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default="jobs/quickstart.yaml")
    p.add_argument("--store", default="/tmp/plan_check.zarr")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--measured", help="an earlier plan_check result: compare with its measured times, run nothing")
    add_arguments(p, "plan_check")
    args = p.parse_args()
    rates = plan.calibrate() if args.calibrate else plan.load_rates()
    predicted = plan.plan(load_spec(args.spec), None, rates)
    print(plan.describe(predicted), file=sys.stderr)
    earlier = None
    if args.measured:
        earlier = json.loads(Path(args.measured).read_text())
        measured = {stage: row["measured_s"] for stage, row in earlier["stages"].items()}
    else:
        shutil.rmtree(args.store, ignore_errors=True)
        shutil.rmtree(f"{args.store}.lock", ignore_errors=True)
        subprocess.run([sys.executable, "-m", "tbotan", "run", args.spec, "--store", args.store], check=True)
        measured = zarr.open_group(args.store, mode="r").attrs["run_times"][-1]
    rows = {
        stage: {
            "planned_s": predicted["wall_seconds"][stage],
            "measured_s": measured[stage],
            "ratio": measured[stage] / predicted["wall_seconds"][stage],
        }
        for stage in ("simulate", "train", "total")
    }
    emit(
        "plan_check",
        {
            "spec": args.spec,
            "rates": rates.to_json(),
            "stages": rows,
            "within_30_percent": all(abs(r["ratio"] - 1) <= 0.3 for r in rows.values()),
            "plan": predicted,
            "measured_by": earlier["command"] if earlier else "this run",
        },
        args,
    )
    if Path(args.store).exists():
        shutil.rmtree(args.store)


if __name__ == "__main__":
    main()
