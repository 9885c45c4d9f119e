"""S(q), F_s(q, t) and tau_alpha: analytic checks, and the full protocol at T = 0.8 (slow)."""

import numpy as np
import pytest

from tbotan.md import relaxation
from tests.helpers import liquid


def test_structure_factor_matches_a_direct_sum_and_ideal_gas_limit(rng):
    box = 6.0
    x = rng.uniform(0, box, (300, 3))
    q, s = relaxation.structure_factor(x, box, q_max=6.0)
    assert np.allclose(np.diff(q) > 0, True) and q[0] == pytest.approx(2 * np.pi / box)
    # the first shell by a direct sum over its six vectors
    dq = 2 * np.pi / box
    vecs = dq * np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    direct = np.mean([abs(np.exp(1j * x @ v).sum()) ** 2 / len(x) for v in vecs])
    assert s[0] == pytest.approx(direct, rel=1e-12)
    # uncorrelated points: S(q) = 1 on average
    assert s.mean() == pytest.approx(1.0, abs=0.1)


def test_first_peak_of_a_parabola():
    q = np.linspace(6, 8.5, 40)
    assert relaxation.first_peak(q, 3 - (q - 7.21) ** 2) == pytest.approx(7.21, abs=1e-9)


def test_self_intermediate_of_gaussian_walkers(rng):
    """Brownian walkers: F_s(q, t) = exp(-q^2 D t) with per-component variance 2 D t per frame."""
    q, d_step = 7.25, 0.002
    steps = rng.normal(0, np.sqrt(d_step), (200, 4000, 3))
    frames = np.cumsum(steps, axis=0)
    fs = relaxation.self_intermediate(frames, q, max_lag=50)
    lags = np.arange(51)
    np.testing.assert_allclose(fs, np.exp(-(q**2) * d_step * lags / 2), atol=0.01)
    tau = relaxation.crossing_time(lags * 1.0, fs)
    assert tau == pytest.approx(2 / (q**2 * d_step), rel=0.03)


def test_crossing_time_of_an_exponential():
    t = np.geomspace(0.01, 100, 200)
    assert relaxation.crossing_time(t, np.exp(-t / 3.0)) == pytest.approx(3.0, rel=1e-3)
    assert np.isnan(relaxation.crossing_time(t, np.ones_like(t)))


def _ar1(rng, n, phi):
    """A stationary AR(1) series of unit variance: x_i = phi x_(i-1) + noise, statistical inefficiency
    (1 + phi) / (1 - phi)."""
    x = np.empty(n)
    x[0] = rng.normal() / np.sqrt(1 - phi**2)
    noise = rng.normal(size=n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x * np.sqrt(1 - phi**2)


def test_statistical_inefficiency_of_a_correlated_series(rng):
    phi = 0.8
    g = relaxation.statistical_inefficiency(_ar1(rng, 200_000, phi))
    assert g == pytest.approx((1 + phi) / (1 - phi), rel=0.15)
    assert relaxation.statistical_inefficiency(rng.normal(size=20_000)) == pytest.approx(1.0, abs=0.1)


def test_a_stationary_correlated_energy_trace_is_a_plateau():
    """200 stationary traces with correlated samples (g = 9, 100 samples a block): none reads as drifting, where an
    error that takes the samples as independent flags a fifth of them."""
    rng = np.random.default_rng(11)
    traces = [-5.0 + 0.05 * _ar1(rng, 400, 0.8) for _ in range(200)]
    flagged = sum(not relaxation.energy_plateau(e)["plateau"] for e in traces)
    naive = 0
    for e in traces:
        a, b = np.array_split(e, 4)[-2:]
        naive += abs(b.mean() - a.mean()) > 4 * np.sqrt(a.var() / len(a) + b.var() / len(b)) + 1e-3
    assert flagged <= 2
    assert naive >= 20  # the check this replaces


def test_an_energy_trace_still_relaxing_is_not_a_plateau():
    """The same noise plus an exponential approach whose last two blocks differ by 8 true standard errors."""
    rng = np.random.default_rng(12)
    n, phi = 400, 0.8
    true_err = 0.05 * np.sqrt((1 + phi) / (1 - phi) * 2 / (n / 4))
    approach = np.exp(-np.arange(n) / (n / 2))
    a, b = np.array_split(approach, 4)[-2:]
    approach *= 8 * true_err / (a.mean() - b.mean())
    flagged = sum(
        not relaxation.energy_plateau(-5.0 + 0.05 * _ar1(rng, n, phi) + approach)["plateau"] for _ in range(200)
    )
    assert flagged >= 180


def test_sq_peak_of_the_liquid_is_near_7_25():
    types, x, box = liquid(1000, 0.8, duration=5.0)
    q, s = relaxation.structure_factor(x[types == 0], box, q_max=10.0)
    assert 7.0 < relaxation.first_peak(q, s) < 7.5
    assert s.max() > 2.0


@pytest.mark.slow
def test_tau_alpha_at_t08_protocol_and_checks():
    r = relaxation.measure_tau_alpha(0.8, 1000, seed=2)
    # LAMMPS with the same protocol gives 2.6-2.8 (benchmarks/physics/tau_alpha.py, docs/tau_alpha.md)
    assert 2.3 < r["tau_alpha"] < 3.2
    assert 7.0 < r["q"] < 7.5
    assert r["energy_plateau"]["plateau"] and r["equilibration_tau"] >= 30
    assert r["mean_potential_energy"] == pytest.approx(-5.52, abs=0.02)
    assert abs(r["energy_drift"]) < 1e-3


def test_several_dynamics_share_one_equilibration():
    """measure_tau_alphas runs each dynamics from the one equilibrated state: its NVE result is the one
    measure_tau_alpha gives alone (same state, velocities and seeds, bit for bit on one CPU thread), and the
    Nose-Hoover run differs from it but shares the state (same equilibration energy)."""
    kw = dict(seed=3, min_equilibration=3.0, production=3.0, platform="CPU")
    nh = {"kind": "nose-hoover", "time_constant": 0.5}
    alone = relaxation.measure_tau_alpha(2.0, 250, **kw)
    nve, other = relaxation.measure_tau_alphas(2.0, 250, [None, nh], **kw)
    assert nve["fs"] == alone["fs"] and nve["tau_alpha"] == alone["tau_alpha"]
    assert nve["dynamics"] == {"kind": "nve"} and other["dynamics"] == nh
    assert other["mean_potential_energy"] == nve["mean_potential_energy"]
    assert other["fs"] != nve["fs"] and 0 < other["tau_alpha"] < 3.0


def test_the_plateau_check_samples_every_20_steps_within_100_and_1000():
    from tbotan.md.relaxation import plateau_samples

    assert plateau_samples(10.26, 0.005) == 102  # a short equilibration: one energy every 20 steps
    assert plateau_samples(495.0, 0.005) == 1000  # a long one: 250 per block of the check
    assert plateau_samples(1.0, 0.005) == 100
