"""`tbotan plan`: the work counted from the spec, the wall time on a profile, its warnings, and the CLI."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tbotan import core, plan
from tbotan.data.spec import load_spec
from tbotan.errors import PlanError, TbotanError
from tbotan.hpc.cluster import load_profile
from tbotan.learn import loss

ROOT = Path(__file__).resolve().parents[1]
RATES = plan.Rates(
    md_particle_steps_per_s=2e5,
    context_s=0.01,
    fire_particle_steps_per_s=1e5,
    fire_steps_per_quench=2000,
    reduce_s_per_particle_frame=2e-5,
    train_s_per_edge_unit=6e-10,
    train_s_per_step=0.05,
    train_start_s=3.0,
    f_s_per_pair=5e-8,
    compiled_speedup=1.5,
    compile_s=40.0,
    rss_base_mb=250.0,
    machine="test",
)


def test_the_work_is_counted_from_the_spec():
    spec = load_spec(ROOT / "jobs" / "ci.yaml")
    p = plan.plan(spec, None, RATES, workers=2)
    n, dt = spec.N, spec.dt
    # every configuration on one chain: equilibration, then decorrelation for each further configuration
    steps = sum((5 + (3 - 1) * 1) * spec.tau_for(T) / dt for T in spec.temperatures)
    assert p["worker_seconds"]["segments"] == pytest.approx(steps * n / 2e5)
    replica_steps = sum(3 * 2 * 1.0 * spec.tau_for(T) / dt for T in spec.temperatures)
    contexts = 6 * 2 * 0.01 * n / 1000
    assert p["worker_seconds"]["replicas"] == pytest.approx(replica_steps * n / 2e5 + contexts)
    assert p["worker_seconds"]["quench"] == pytest.approx(6 * 2000 * n / 1e5)
    assert p["worker_seconds"]["tau_alpha"] == 0  # given, not measured
    longest = max((5 + 2) * spec.tau_for(T) / dt * n / 2e5 for T in spec.temperatures)
    sim = sum(p["worker_seconds"][k] for k in ("segments", "quench", "replicas", "reduce"))
    assert p["wall_seconds"]["simulate"] == pytest.approx(max(sim / 2, longest))
    # training: 2 seeds x 4 epochs x 1 training graph (0.8 only), eager (compile off in ci.yaml)
    step = plan.EDGES_PER_PARTICLE * n * 16**2 * 2 * 6e-10 + n * n / 2 * 5e-8 + 0.05
    threads = plan._training_ranks(None, 2)[1]  # this machine's cores over the 2 ranks of 2 seeds
    per_seed = (4 * 1 + 4 * 1 / 3) * step / threads + 3.0
    assert p["worker_seconds"]["train"] == pytest.approx(2 * per_seed)
    # in bf16 (training.precision) the network's part of the step runs bf16_speedup times faster
    half = spec.model_copy(update={"training": spec.training.model_copy(update={"precision": "bfloat16"})})
    fast = dataclasses.replace(RATES, bf16_speedup=2.0)
    step16 = plan.EDGES_PER_PARTICLE * n * 16**2 * 2 * 6e-10 / 2.0 + n * n / 2 * 5e-8 + 0.05
    per_seed16 = (4 * 1 + 4 * 1 / 3) * step16 / threads + 3.0
    assert plan.plan(half, None, fast, workers=2)["worker_seconds"]["train"] == pytest.approx(2 * per_seed16)
    assert plan.plan(spec, None, fast, workers=2)["worker_seconds"]["train"] == pytest.approx(2 * per_seed)
    auto = spec.model_copy(update={"training": spec.training.model_copy(update={"precision": "auto"})})
    assert plan.plan(auto, None, fast, workers=2)["worker_seconds"]["train"] == pytest.approx(2 * per_seed16)
    assert plan.plan(auto, None, RATES, workers=2)["worker_seconds"]["train"] == pytest.approx(2 * per_seed)
    # a compiled run's step has the compiled fixed part, where the rates have one
    compiled = spec.model_copy(update={"training": spec.training.model_copy(update={"compile": "on"})})
    fixed_c = dataclasses.replace(RATES, train_s_per_step_compiled=0.02)
    step_c = plan.EDGES_PER_PARTICLE * n * 16**2 * 2 * 6e-10 / 1.5 + n * n / 2 * 5e-8 + 0.02
    per_seed_c = (4 * 1 + 4 * 1 / 3) * step_c / threads + 3.0 + 40.0
    assert plan.plan(compiled, None, fixed_c, workers=2)["worker_seconds"]["train"] == pytest.approx(2 * per_seed_c)
    # the store: K x n_t x N x 3 float32 replica positions and the rest, for 6 configurations
    assert p["store_bytes"] > 6 * 2 * n * 3 * 4


def test_pairs_evaluated_is_what_the_cells_evaluate():
    """The plan's count of F(X, d)'s pairs against the cells tbotan.learn.loss builds, at L = 30 (N = 32768)."""
    n = 32768
    box = core.box_length(n)
    pos = torch.tensor(np.random.default_rng(0).uniform(0, box, (n, 3)))
    order, first, above = loss.cells(pos, box, 11.0)
    size = np.diff(first)
    evaluated = sum(size[a] * (size[a] + 1) / 2 + size[a] * size[above[a]].sum() for a in range(len(size)))
    assert plan.pairs_evaluated(n, 1.2) == pytest.approx(evaluated, rel=0.02)
    assert plan.pairs_evaluated(4096, 1.2) == 4096**2 / 2  # below L = 25.7 every pair
    assert evaluated < n * n / 2 * 0.7  # linear regime: fewer than all pairs already at L = 30


def test_warnings_name_the_numbers(tmp_path):
    spec = load_spec(ROOT / "jobs" / "paper.yaml")
    profile = load_profile(ROOT / "hpc" / "slurm-cpu.yaml")
    p = plan.plan(spec, profile, RATES)
    text = "\n".join(p["warnings"])
    assert "longer than a worker job's walltime" in text and "h)" in text
    small = profile.model_copy(update={"memory": "100MB", "processes": 1})
    assert any("simulation worker needs" in w for w in plan.plan(spec, small, RATES)["warnings"])
    gpu = load_profile(ROOT / "hpc" / "slurm-gpu.yaml")
    assert any("rates are a CPU's" in w for w in plan.plan(spec, gpu, RATES)["warnings"])
    quick = plan.plan(load_spec(ROOT / "jobs" / "quickstart.yaml"), None, RATES)
    assert quick["warnings"] == []


def test_cli_plans_refuses_bad_specs_and_reads_rates(tmp_path):
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps(RATES.to_json()))
    out = subprocess.run(
        [sys.executable, "-m", "tbotan", "plan", str(ROOT / "jobs" / "ci.yaml"), "--json", "--rates", str(rates)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    p = json.loads(out.stdout)
    assert p["rates"]["machine"] == "test" and p["wall_seconds"]["total"] > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("N: 10\ntemperatures: [0.8]\n")
    out = subprocess.run([sys.executable, "-m", "tbotan", "plan", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "N: too small" in out.stderr
    rates.write_text("{not json")
    out = subprocess.run(
        [sys.executable, "-m", "tbotan", "plan", str(ROOT / "jobs" / "ci.yaml"), "--rates", str(rates)],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "not a rates file" in out.stderr


def test_the_reference_rates_ship_with_the_package():
    r = plan.load_rates(plan.REFERENCE_RATES)
    assert r.md_particle_steps_per_s > 0 and "reference machine" in r.machine


def test_an_uncalibrated_plan_gives_the_range_over_machines_of_this_kind(tmp_path):
    slow, ref = plan.load_rates(plan.SLOWEST_RATES), plan.load_rates(plan.REFERENCE_RATES)
    assert slow.md_particle_steps_per_s < ref.md_particle_steps_per_s and "slowest measured" in slow.machine
    env = {**os.environ, "TBOTAN_RATES": str(tmp_path / "not-calibrated.json")}
    out = subprocess.run(
        [sys.executable, "-m", "tbotan", "plan", str(ROOT / "jobs" / "quickstart.yaml"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    p = json.loads(out.stdout)
    assert p["wall_seconds_slowest_machine"]["total"] > 1.5 * p["wall_seconds"]["total"]


def test_missing_or_unreadable_rates_are_a_plan_error_naming_the_calibration(tmp_path):
    with pytest.raises(PlanError, match=r"no rates at .*none\.json: run `tbotan plan --calibrate`"):
        plan.load_rates(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanError, match="not a rates file") as e:
        plan.load_rates(tmp_path / "bad.json")
    assert isinstance(e.value, TbotanError) and isinstance(e.value, ValueError)


def test_the_calibration_names_the_cpu_and_its_simd_level(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse4_1 avx avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: Some Xeon\nflags\t\t: fpu sse4_1 avx avx2 fma\n"
    )
    assert plan.cpu_description(info) == "Some Xeon; sse4_1 avx avx2 fma"
    info.write_text("processor\t: 0\nmodel name\t: Old Opteron\nflags\t\t: fpu sse2\n")
    assert plan.cpu_description(info) == "Old Opteron; no SIMD flags listed"
    assert plan.cpu_description(tmp_path / "absent")  # not Linux: platform's word for it


@pytest.mark.slow
def test_calibrate_measures_every_rate(tmp_path):
    r = plan.calibrate(tmp_path / "rates.json", log=lambda line: None)
    assert plan.load_rates(tmp_path / "rates.json") == r
    fixed_ok = 0 <= r.train_s_per_step_compiled <= r.train_s_per_step  # compilation shrinks the fixed part, if at all
    skip = ("machine", "measured", "gpu", "compile_s", "train_s_per_step_compiled")
    assert fixed_ok and all(v > 0 for k, v in r.to_json().items() if k not in skip)
