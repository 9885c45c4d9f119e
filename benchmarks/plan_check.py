"""`tbotan plan` against a real run on this machine: the plan's wall times beside the stage times measured.

    python benchmarks/plan_check.py [--spec jobs/quickstart.yaml] [--calibrate] [--store /tmp/plan_check.zarr]
    python benchmarks/plan_check.py --measured results/plan_check.json     # re-plan against that run's times

Calibrates first with ``--calibrate`` (else uses this machine's kept rates), plans the spec for this machine, runs
``tbotan run SPEC`` into a fresh store, and compares the simulate and train stages and the total with the plan
(ratio = measured / planned). ``--measured`` takes the measured stage times of an earlier run of this script
instead of running again (they are copied into the result, with that run's command). Prints one JSON object
and writes benchmarks/results/plan_check.json.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import zarr
from record import emit

from tbotan import plan
from tbotan.data.spec import load_spec


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default="jobs/quickstart.yaml")
    p.add_argument("--store", default="/tmp/plan_check.zarr")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--measured", help="an earlier plan_check result: compare with its measured times, run nothing")
    p.add_argument("--name", default="plan_check")
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
        args.name,
        {
            "spec": args.spec,
            "rates": rates.to_json(),
            "stages": rows,
            "within_30_percent": all(abs(r["ratio"] - 1) <= 0.3 for r in rows.values()),
            "plan": predicted,
            "measured_by": earlier["command"] if earlier else "this run",
        },
    )
    if Path(args.store).exists():
        shutil.rmtree(args.store)


if __name__ == "__main__":
    main()
