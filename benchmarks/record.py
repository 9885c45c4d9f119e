"""How every benchmark reports: one JSON object on stdout, with the command that made it; also written to a file
the caller names (``--out FILE``), and into the tracked results, benchmarks/results/<name>.json, only when asked
(``--record``, or ``--name NAME``).

benchmarks/results/ holds the results the documents cite (benchmarks/README.md maps each to its script and to the
document that cites it); a run that backs no document stays out of it. The scripts live in benchmarks/<kind>/ and
put benchmarks/ on their path to import this module (and lammps_runner.py).
"""

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"  # the tracked results
SCRATCH = Path(tempfile.gettempdir()) / "tbotan_benchmarks"  # the logs of a run that is neither recorded nor --out


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--out FILE``, ``--record`` and ``--name NAME`` (which names the result and records it; ``name``, the
    script's own name for it, is shown in the help)."""
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument(
        "--record", action="store_true", help="also write it to benchmarks/results/<name>.json (the tracked results)"
    )
    parser.add_argument(
        "--name", help=f"record it as benchmarks/results/NAME.json (implies --record; default name: {name})"
    )


def result_name(name: str, args: argparse.Namespace | None) -> str:
    """The result's name: ``--name`` where given, else the script's ``name``."""
    return getattr(args, "name", None) or name


def recording(args: argparse.Namespace | None) -> bool:
    """Whether the result goes into the tracked results: ``--record``, or a ``--name`` given."""
    return bool(getattr(args, "record", False) or getattr(args, "name", None))


def log_path(name: str, args: argparse.Namespace | None) -> Path:
    """Where a benchmark that logs each run as it finishes (a rerun skips the runs there) keeps <name>.jsonl:
    beside the recorded result, else beside ``--out FILE``, else in a scratch folder of the temporary directory."""
    if recording(args):
        path = RESULTS / f"{result_name(name, args)}.jsonl"
    elif getattr(args, "out", None):
        path = Path(args.out).with_suffix(".jsonl")
    else:
        path = SCRATCH / f"{result_name(name, args)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write(text: str, out: str | Path | None = None, name: str | None = None) -> None:
    """Write ``text`` (one JSON document) to ``out`` and, with ``name``, to benchmarks/results/<name>.json."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    if name:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.json").write_text(text + "\n")


def emit(name: str, result: dict, args: argparse.Namespace | None = None) -> dict:
    """Print ``result`` (with the command line that produced it) as one JSON object.

    Args:
        name: the script's name for the result (its default, or made from ``--tag``); ``--name`` replaces it.
        result: the measured numbers.
        args: the parsed command line (``add_arguments``): ``--out FILE`` also writes the JSON there, ``--record``
            or ``--name`` also writes it to benchmarks/results/<name>.json. Without them it is printed only.
    """
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    out = {"command": " ".join(shlex.quote(a) for a in argv), **result}
    text = json.dumps(out, indent=1, default=float)
    write(text, getattr(args, "out", None), result_name(name, args) if recording(args) else None)
    print(text)
    return out
