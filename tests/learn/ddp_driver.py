"""Launched by tests/learn/test_train.py under ``python -m torch.distributed.run``: trains, then every rank saves its
in-memory model of each seed it trained to OUT/rank<r>_seed<s>.pt."""

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from tbotan.data.spec import load_spec
from tbotan.learn.train import train


def main():
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--graphs-per-step", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(message)s", stream=sys.stdout)
    results = train(load_spec(a.spec), a.store, seeds=a.seeds, epochs=a.epochs, graphs_per_step=a.graphs_per_step)
    for seed, r in results.items():
        torch.save(r["model"].state_dict(), Path(a.out) / f"rank{rank}_seed{seed}.pt")


if __name__ == "__main__":
    main()
