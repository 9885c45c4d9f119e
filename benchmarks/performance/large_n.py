"""A large N through the data pipeline on this machine: `tbotan simulate` of a minimal spec at N, with the peak
memory of all its processes (the driver and its Dask workers) sampled every 0.2 s.

    python benchmarks/performance/large_n.py [--N 16384] [--store /tmp/large_n.zarr] [--out FILE]
                                             [--record | --name NAME]

The spec: one temperature (0.80, tau_alpha 2.7), one configuration, K = 2, 2 tau_alpha of equilibration, FIRE to
a mean force of 1e-3. FIRE stops there because a quench's steps grow with N (to 1e-3 from T = 0.8: 1500 at
N = 1000, 4800 at 4096) and its double-precision stage runs on the single-threaded Reference platform, 0.44 s
per step at N = 16384 (benchmarks/performance/scaling.py): a quench to 1e-12 takes tens of minutes here. A training
step's memory at these N is measured by benchmarks/performance/scaling.py. Not physics: what it shows is that every
stage of the data runs at this N and what memory it needs. Prints one JSON object (wall time, peak summed RSS, the
largest single process, the store's status); ``--out FILE``: also there; ``--record``: also
benchmarks/results/large_n_<N>.json; ``--name NAME``: NAME.json.
"""

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit

SPEC = """N: {n}
temperatures: [0.8]
tau_alpha: {{0.8: 2.7}}
times: [1.0]
configurations: 1
splits: {{validation: 0, test: 0}}
replicas: 2
equilibration: 2
decorrelation: 1
seed: 0
fire: {{tolerance: 1.0e-3}}
"""


def sample(proc: psutil.Process, peak: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            procs = [proc, *proc.children(recursive=True)]
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            peak["total"] = max(peak["total"], sum(rss))
            peak["largest"] = max(peak["largest"], max(rss, default=0))
        except psutil.Error:
            pass
        time.sleep(0.2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, default=16384)
    p.add_argument("--store", default="/tmp/large_n.zarr")
    add_arguments(p, "large_n_<N>")
    args = p.parse_args()
    store = Path(args.store)
    shutil.rmtree(store, ignore_errors=True)
    spec = store.with_suffix(".yaml")
    spec.write_text(SPEC.format(n=args.N))
    peak, stop = {"total": 0, "largest": 0}, threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tbotan", "simulate", str(spec), "--store", str(store)])
    watcher = threading.Thread(target=sample, args=(psutil.Process(proc.pid), peak, stop), daemon=True)
    watcher.start()
    rc = proc.wait()
    stop.set()
    watcher.join()
    result = {
        "N": args.N,
        "returncode": rc,
        "wall_s": time.perf_counter() - start,
        "peak_total_rss_gib": peak["total"] / 2**30,
        "peak_largest_process_rss_gib": peak["largest"] / 2**30,
        "status": subprocess.run(
            [sys.executable, "-m", "tbotan", "status", str(store), "--json"], capture_output=True, text=True
        ).stdout
        if rc == 0
        else None,
        "spec": SPEC.format(n=args.N),
    }
    emit(f"large_n_{args.N}", result, args)
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
