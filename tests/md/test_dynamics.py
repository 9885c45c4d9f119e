"""Iso-configurational runs: velocities, determinism, NVE energy conservation, unwrapped positions."""

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
