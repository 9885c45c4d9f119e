"""benchmarks/performance/gpu.sh, the acceptance check of a GPU node, on the platforms CI has: CPU, and OpenCL where
an OpenCL driver is installed (POCL runs it on the CPU). Every section's numbers are checked, at a small N."""

import json
import os
import subprocess
from pathlib import Path

import openmm
import pytest

ROOT = Path(__file__).resolve().parents[1]
N = 300


def run_gpu_sh(platform: str, tmp_path: Path) -> dict:
    out = tmp_path / "gpu.json"
    args = ["--platform", platform, "--N", str(N), "--concurrent", "1", "2", "--steps", "200"]
    args += ["--train-steps", "1", "--no-compile", "--out", str(out)]
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "performance" / "gpu.sh"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=300,
    )
    printed = json.loads(done.stdout)  # one JSON object, printed whatever the outcome
    assert done.returncode == (0 if printed["ok"] else 1), done.stderr[-3000:]
    assert printed == json.loads(out.read_text())
    failed = {k: printed[k].get("error") for k in printed["checks"] if not printed["checks"][k]}
    assert printed["ok"] and printed["complete"], failed
    return printed


def check_common(r: dict, platform: str) -> None:
    assert r["platform"] == platform and r["platforms"]["under_test"] == platform
    assert platform in r["platforms"]["available"] and "Reference" in r["platforms"]["available"]
    assert r["platforms"]["auto"] in r["platforms"]["available"] and r["platforms"]["properties"]

    e = r["ensemble"]
    assert e["ok"] and e["against"] == "CPU" and e["steps"] == 200 and len(e["seeds"]) == 2
    assert e["max_abs_dx"] <= e["tolerance"]["max_abs_dx"] and e["max_abs_dC_B"] <= e["tolerance"]["max_abs_dC_B"]
    for mean in e["mean_C_B"].values():  # after 1 tau_LJ at T = 0.8 most bonds are still there
        assert 0.8 < mean < 1.0

    f = r["fire"]
    assert f["ok"] and 0 < f["residual_reference"] < 1e-12 and f["steps"] > 0 and "+Reference:" in f["path"]
    assert -7.5 < f["energy_per_particle"] < -6.0  # a KA inherent structure

    u = r["reuse"]
    assert u["ok"] and u["max_abs_dx"] <= u["tolerance"]
    assert u["context_s"] > 0 and u["replica_reused_s"] > 0 and u["replica_fresh_s"] > 0

    m = r["md"]
    assert m["ok"] and m["mps"] == "not available" and [x["processes"] for x in m["runs"]] == [1, 2]
    for x in m["runs"]:  # the aggregate is the processes' steps over the wall time they took together
        assert 0 < x["aggregate_particle_steps_per_s"] <= x["processes"] * N * x["steps_per_s_each"] * 1.05
        assert all(-7.0 < u_ < -4.0 for u_ in x["energy_per_particle"])
    assert m["best_aggregate_particle_steps_per_s"] == max(x["aggregate_particle_steps_per_s"] for x in m["runs"])

    t = r["training"]
    assert [(x["device"], x["compile"]) for x in t] == [("cpu", "off")] and t[0]["seconds_per_step"] > 0

    d = r["ddp"]
    assert d["ok"] and d["backend"] == "gloo" and d["world_size"] == 2 and d["seconds_per_step"] > 0
    assert d["initial_parameter_spread"] > 0  # the ranks started apart ...
    assert d["parameters_equal_after_one_step"] and d["parameter_spread_after_one_step"] == 0.0  # ... DDP joined them
    assert d["first_loss_per_rank"][0] != d["first_loss_per_rank"][1]  # each rank had its own data


def test_gpu_benchmark_on_the_cpu_platform(tmp_path):
    r = run_gpu_sh("CPU", tmp_path)
    check_common(r, "CPU")
    assert r["ensemble"]["max_abs_dx"] == 0.0  # the CPU platform against itself: one thread, deterministic
    assert r["fire"]["path"].startswith("CPU(")  # single precision down to the handoff, then Reference
    assert r["reuse"]["max_abs_dx"] == 0.0


@pytest.mark.skipif(
    "OpenCL" not in [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())],
    reason="OpenMM has no OpenCL platform here (no OpenCL driver: Debian's pocl-opencl-icd runs it on the CPU)",
)
def test_gpu_benchmark_on_opencl(tmp_path):
    r = run_gpu_sh("OpenCL", tmp_path)
    check_common(r, "OpenCL")
    assert r["platforms"]["properties"]["DeviceName"]
    assert 0 < r["ensemble"]["max_abs_dx"] <= 5e-4  # mixed precision against the CPU's single: rounding only
    assert r["fire"]["path"].startswith("OpenCL(Precision=double)")  # the bulk in double on OpenCL
    assert r["reuse"]["max_abs_dx"] > 0  # a reused OpenCL context does not repeat a fresh one bit for bit
