"""benchmarks/gpu.sh's paths that need no GPU (the CPU platform, a small N): concurrent replicas, FIRE, a step."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tbotan.md.fire import FireParameters

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_runs_on_the_cpu_platform(tmp_path):
    name = "gpu_cpu_check"
    out = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks" / "gpu.sh"),
            "--platform",
            "CPU",
            "--N",
            "300",
            "--concurrent",
            "1",
            "2",
            "--steps",
            "200",
            "--train-steps",
            "1",
            "--no-compile",
            "--name",
            name,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    result_file = ROOT / "benchmarks" / "results" / f"{name}.json"
    try:
        assert out.returncode == 0, out.stderr[-2000:]
        r = json.loads(result_file.read_text())
    finally:
        result_file.unlink(missing_ok=True)
    assert r["platform"] == "CPU" and [m["processes"] for m in r["md"]] == [1, 2]
    for m in r["md"]:  # the aggregate is the processes' steps over the wall time they took together
        assert 0 < m["aggregate_particle_steps_per_s"] <= m["processes"] * 300 * m["steps_per_s_each"] * 1.05
    assert r["fire"]["mean_force"] < FireParameters().tolerance and r["fire"]["steps"] > 0
    assert r["training"][0]["compile"] == "off" and r["training"][0]["seconds_per_step"] > 0
