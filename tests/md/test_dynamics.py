"""Iso-configurational runs: velocities, determinism, NVE energy conservation, unwrapped positions."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tbotan.md import dynamics


def test_maxwell_boltzmann_velocities(rng):
    n, temperature = 4000, 0.47
    v = dynamics.maxwell_boltzmann(n, temperature, seed=7)
    assert np.abs(v.sum(axis=0)).max() < 1e-10  # zero total momentum
    assert dynamics.kinetic_temperature(v) == pytest.approx(temperature, rel=1e-12)
    # each component is Gaussian with variance T: kurtosis 3, and the std of each axis within 3 %
    assert np.allclose(v.std(axis=0), np.sqrt(temperature), rtol=0.03)
    z = v.ravel() / v.std()
    assert np.mean(z**4) == pytest.approx(3.0, abs=0.15)
    assert not np.allclose(v, dynamics.maxwell_boltzmann(n, temperature, seed=8))


def test_replica_seeds_are_distinct_and_reproducible():
    a = dynamics.replica_seeds(42, 32)
    assert len(set(a.tolist())) == 32 and (a >= 0).all()
    assert np.array_equal(a, dynamics.replica_seeds(42, 32))
    assert not np.array_equal(a, dynamics.replica_seeds(43, 32))


def test_same_seed_same_trajectory_and_nve_conserves_energy(liquid_500):
    types, x, box = liquid_500
    times = [1.0, 5.0, 10.0, 20.0]
    a = dynamics.run_replica(types, x, box, 0.8, times, seed=11)
    b = dynamics.run_replica(types, x, box, 0.8, times, seed=11)
    c = dynamics.run_replica(types, x, box, 0.8, times, seed=12)
    assert np.array_equal(a.positions, b.positions)  # bit-identical
    assert not np.allclose(a.positions[0], c.positions[0])
    assert a.initial_temperature == pytest.approx(0.8, rel=1e-12)
    assert np.allclose(a.times, times)
    # NVE with dt = 0.005 over 20 tau_LJ (4000 steps): total energy per particle drifts < 1e-3
    drift = np.abs(a.energy - a.energy[0]).max()
    assert drift < 1e-3, drift


def test_a_reused_context_starts_the_trajectory_of_a_fresh_one(liquid_500):
    """With ``reuse`` (off by default) NVE replicas borrow this process's context: a start after a run from another
    configuration follows a fresh context's trajectory (to float rounding); a context that failed is dropped. By
    default nothing is kept and the frames are a fresh context's bit for bit."""
    types, x, box = liquid_500
    times = [0.05, 0.5]
    other = dynamics.run_replica(types, x, box, 0.8, times, seed=5).positions[-1]
    dynamics._POOL.clear()
    fresh = dynamics.run_replica(types, other, box, 0.8, times, seed=9)
    assert not dynamics._POOL  # the default: a fresh context each time
    dynamics.run_replica(types, x, box, 0.8, times, seed=5, reuse=True)
    context = next(iter(dynamics._POOL.values()))[0]
    again = dynamics.run_replica(types, other, box, 0.8, times, seed=9, reuse=True)
    assert next(iter(dynamics._POOL.values()))[0] is context and len(dynamics._POOL) == 1
    assert np.abs(again.positions[0] - fresh.positions[0]).max() < 1e-5
    assert np.abs(again.energy - fresh.energy).max() < 1e-4
    broken = x.copy()
    broken[1] = broken[0] + np.array([0.05, 0.0, 0.0])
    with pytest.raises(dynamics.BlowUp):
        dynamics.run_replica(types, broken, box, 0.8, [1.0], seed=1, reuse=True)
    assert not dynamics._POOL  # a context that failed is not reused
    assert np.array_equal(dynamics.run_replica(types, other, box, 0.8, times, seed=9).positions, fresh.positions)


def test_no_context_is_used_by_two_tasks_at_once(liquid_500):
    """A worker with 2 threads runs 2 replicas at once, each with ``reuse``: each borrows a context of its own
    (the pool once handed one context to both: one thread hung in getState, or the two runs mixed), and each
    ends where a fresh context's run ends."""
    types, x, box = liquid_500
    times = [0.1, 0.5]
    dynamics._POOL.clear()
    dynamics.run_replica(types, x, box, 0.8, times, seed=3, reuse=True)  # a context in the pool to share
    fresh = {s: dynamics.run_replica(types, x, box, 0.8, times, seed=s).positions for s in (11, 12, 13, 14)}
    with ThreadPoolExecutor(2) as pool:
        runs = {s: pool.submit(dynamics.run_replica, types, x, box, 0.8, times, seed=s, reuse=True) for s in fresh}
        done = {s: f.result(timeout=120).positions for s, f in runs.items()}
    for s in fresh:
        assert np.abs(done[s] - fresh[s]).max() < 1e-4, s
    assert 1 <= len(dynamics._POOL) <= dynamics.POOL_MAX
    dynamics._POOL.clear()


def test_a_random_start_has_no_overlapping_pair():
    """N = 4096, seed 1: OpenMM's minimiser alone left a pair at r = 0.045 (and the equilibration blew up)."""
    from scipy.spatial import cKDTree

    from tbotan import core

    types, box = core.species(4096), core.box_length(4096)
    x = np.mod(dynamics.random_configuration(types, box, seed=1), box)
    nearest = cKDTree(x, boxsize=box).query(x, k=2)[0][:, 1]
    assert nearest.min() > dynamics.OVERLAP


def test_positions_are_unwrapped(liquid_500):
    types, x, box = liquid_500
    r = dynamics.run_replica(types, x, box, 0.8, np.arange(1, 21) * 0.5, seed=3)
    assert ((r.positions[-1] < 0) | (r.positions[-1] >= box)).any()  # particles left the box ...
    steps = np.abs(np.diff(np.concatenate([x[None], r.positions]), axis=0))
    assert steps.max() < box / 4  # ... without jumping by L


def test_blow_up_is_reported_with_its_label(liquid_500):
    types, x, box = liquid_500
    x = x.copy()
    x[1] = x[0] + np.array([0.05, 0.0, 0.0])
    with pytest.raises(dynamics.BlowUp, match="replica 3"):
        dynamics.run_replica(types, x, box, 0.8, [1.0], seed=1, label="replica 3")


def test_bad_observation_times():
    with pytest.raises(ValueError, match="increasing"):
        dynamics.observation_steps([2.0, 1.0], 0.005)


# --- thermostatted dynamics (spec field `dynamics`) ---
THERMOSTATS = [
    {"kind": "nose-hoover", "time_constant": 0.5},
    {"kind": "langevin", "friction": 1.0, "zero_sum_noise": True},
    {"kind": "langevin", "friction": 1.0, "zero_sum_noise": False},
]


@pytest.mark.parametrize("motion", THERMOSTATS, ids=lambda d: f"{d['kind']}-{d.get('zero_sum_noise', '')}")
def test_thermostats_hold_the_temperature_and_replicas_are_reproducible(liquid_500, motion):
    """<T_kin> over 20 tau_LJ equals the bath's T (equipartition, 3N - 3 degrees of freedom) within 2 %, starting
    from a state at 0.8 and asked for 0.6; the same seed gives the same run."""
    from tbotan.md import engine

    types, x, box = liquid_500
    n, temperature = len(types), 0.6
    context, integ = dynamics.dynamics_context(
        types, box, x, dynamics.maxwell_boltzmann(n, 0.8, 1), temperature, 0.005, 9, motion
    )
    integ.step(1000)  # 5 tau_LJ to settle
    kinetic = []
    for _ in range(100):
        integ.step(40)
        kinetic.append(dynamics.kinetic_temperature(engine.read_state(context, velocities=True)["velocities"]))
    assert np.mean(kinetic) == pytest.approx(temperature, rel=0.02)
    a = dynamics.run_replica(types, x, box, 0.8, [1.0, 2.0], seed=11, dynamics=motion)
    b = dynamics.run_replica(types, x, box, 0.8, [1.0, 2.0], seed=11, dynamics=motion)
    c = dynamics.run_replica(types, x, box, 0.8, [1.0, 2.0], seed=12, dynamics=motion)
    assert np.array_equal(a.positions, b.positions) and not np.allclose(a.positions, c.positions)


def _ideal_gas(n_side=4, spacing=12.5):
    """n_side^3 particles on a lattice 12.5 apart in a box of 50: no pair comes within the 2.5 cutoff in 10
    tau_LJ, so every force is zero and the dynamics is the thermostat's alone."""
    g = (np.arange(n_side) + 0.5) * spacing
    x = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.zeros(len(x), dtype=np.int8), x, n_side * spacing


@pytest.mark.parametrize("zero_sum", [True, False])
def test_langevin_friction_and_momentum_against_the_ideal_gas(zero_sum):
    """Without forces BAOAB gives v_{n+1} = a v_n + noise, so <v(0).v(t)> / <v^2> = exp(-friction t) exactly
    (the zero-sum noise is independent of the past velocities too); zero-sum noise keeps the total momentum at
    zero, independent noise lets it wander (the check can fail)."""
    from tbotan.md import engine

    types, x, box = _ideal_gas()
    friction, temperature = 2.0, 0.8
    motion = {"kind": "langevin", "friction": friction, "zero_sum_noise": zero_sum}
    v0 = dynamics.maxwell_boltzmann(len(types), temperature, 3)
    context, integ = dynamics.dynamics_context(types, box, x, v0, temperature, 0.005, 5, motion)
    frames = []
    for _ in range(200):
        integ.step(10)
        frames.append(engine.read_state(context, velocities=True)["velocities"])
    v = np.array(frames)  # (200, n, 3), every 0.05 tau_LJ
    lag = 10  # t = 0.5: exp(-1)
    c = np.mean(np.sum(v[lag:] * v[:-lag], axis=-1)) / np.mean(np.sum(v * v, axis=-1))
    assert c == pytest.approx(np.exp(-friction * 0.5), rel=0.08)
    momentum = np.abs(v.sum(axis=1)).max()
    assert (momentum < 1e-4) if zero_sum else (momentum > 1.0), momentum


def test_unknown_dynamics_is_refused():
    with pytest.raises(ValueError, match="unknown dynamics 'brownian'"):
        dynamics.integrator("brownian", 0.8, 0.005, 0)
