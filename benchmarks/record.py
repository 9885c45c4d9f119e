"""How every benchmark reports: one JSON object on stdout, with the command that made it, also written to
benchmarks/results/<name>.json."""

import json
import shlex
import sys
from pathlib import Path


def emit(name: str, result: dict) -> dict:
    """Print ``result`` (with the command line that produced it) as one JSON object and write it to
    benchmarks/results/<name>.json."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    out = {"command": " ".join(shlex.quote(a) for a in argv), **result}
    text = json.dumps(out, indent=1, default=float)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(text + "\n")
    print(text)
    return out
