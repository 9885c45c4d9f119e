"""What several test modules share: the repository root, small equilibrated liquids, whether SLURM answers."""

import functools
import shutil
import subprocess
import sys
from pathlib import Path

from tbotan import core
from tbotan.md import dynamics

ROOT = Path(__file__).resolve().parents[1]
TBOTAN = [sys.executable, "-m", "tbotan"]  # the command line, run by this interpreter


def torchrun(nproc: int, *args) -> list[str]:
    """The command that runs ``args`` on ``nproc`` local torch.distributed ranks."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
    return [*launcher, "--nproc_per_node", str(nproc), *map(str, args)]


@functools.cache
def liquid(n: int, temperature: float, duration: float = 5.0, seed: int = 0):
    """A KA liquid of ``n`` particles after a short NVT run at ``temperature``: (types, positions, box)."""
    types = core.species(n)
    box = core.box_length(n)
    x = dynamics.random_configuration(types, box, seed)
    eq = dynamics.equilibrate(types, x, box, temperature, duration, seed=seed)
    return types, eq.positions, box


@functools.cache
def slurm_missing() -> str | None:
    """Why SLURM cannot be used here (None when a node answers); .ci/slurm-up.sh brings one up."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo is not on PATH; .ci/slurm-up.sh brings one up)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "SLURM is not responding (sinfo timed out)"
    states = out.stdout.split()
    if out.returncode or not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"SLURM is not responding or has no usable node (sinfo: {(out.stdout + out.stderr).strip()!r})"
    return None


def trained_copy(ci_store, folder) -> tuple:
    """A copy of the store of jobs/ci.yaml in ``folder``, both seeds trained (one torch thread, so the numbers do
    not depend on the machine's cores) and evaluated: (spec, store path)."""
    import torch

    from tbotan.data.spec import load_spec
    from tbotan.learn.evaluate import evaluate
    from tbotan.learn.train import train

    store = Path(folder) / "ci.zarr"
    shutil.copytree(ci_store, store)
    spec = load_spec(ROOT / "jobs" / "ci.yaml")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(spec, store)
        evaluate(spec, store)
    finally:
        torch.set_num_threads(before)
    return spec, store
