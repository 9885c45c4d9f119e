"""C_B, E_jk, propensity and graph edges against brute-force NumPy (all pairs, minimum image)."""

import numpy as np
import pytest

from tbotan import core
from tbotan.data import targets
from tbotan.md import dynamics, fire
from tests import reference as ref
from tests.helpers import liquid


@pytest.fixture(scope="module")
def iso_runs():
    types, x, box = liquid(256, 0.8)
    x = core.wrap(x, box)  # stored thermal structures are wrapped
    inherent = fire.quench(types, x, box).positions
    times = [0.5, 3.0]
    reps = dynamics.iso_configurational(types, x, box, 0.8, times, dynamics.replica_seeds(1, 3))
    frames = np.stack([r.positions for r in reps])  # (K, n_t, N, 3)
    return types, x, inherent, frames, box


def test_particles_cross_the_box(iso_runs):
    _, _, _, frames, box = iso_runs
    assert ((frames < 0) | (frames >= box)).any()


def test_bond_breaking_matches_brute_force(iso_runs):
    types, x, _, frames, box = iso_runs
    cb = targets.bond_breaking(types, x, frames, box)
    assert cb.shape == (2, len(types))
    for i in range(2):
        expected = ref.bond_breaking_brute(types, x, list(frames[:, i]), box)
        np.testing.assert_allclose(cb[i], expected, rtol=0, atol=1e-14)
    # physics: bonds break over time, so C_B decays on average, and some particles lose bonds
    assert cb[1].mean() < cb[0].mean() < 1.0 and cb[1].min() < 1.0


def test_edges_and_edge_targets_match_brute_force(iso_runs):
    types, x, inherent, frames, box = iso_runs
    edges = targets.graph_edges(inherent, box)
    e = targets.edge_targets(edges, x, frames, box)
    for i in range(2):
        ref_edges, ref_e = ref.edge_targets_brute(core.wrap(inherent, box), x, list(frames[:, i]), box)
        np.testing.assert_array_equal(edges, ref_edges)
        np.testing.assert_allclose(e[i], ref_e, rtol=0, atol=1e-12)
    assert 20 < len(edges) / len(types) < 60  # ~40 neighbours within 2 sigma at density 1.2


def test_propensity_is_the_mean_absolute_displacement_and_msd_the_mean_square(iso_runs):
    _, x, _, frames, _ = iso_runs
    p, m = targets.propensity(x, frames), targets.msd(x, frames)
    runs = [[np.sqrt(np.sum((f - x) ** 2, axis=1)) for f in rep] for rep in frames]  # (K, n_t, N) |dr| per run
    np.testing.assert_allclose(p, np.mean(runs, axis=0), rtol=1e-14)
    np.testing.assert_allclose(m, np.mean(np.square(runs), axis=0), rtol=1e-13)
    assert p[1].mean() > p[0].mean() > 0
    assert (m >= p**2 - 1e-12).all()  # Jensen: <d^2> >= <d>^2, per particle


def test_fs_a_is_the_ensemble_self_intermediate_function_of_a_particles(iso_runs):
    types, x, _, frames, _ = iso_runs
    fs = targets.self_intermediate_a(types, x, frames)
    q, direct = 7.25, []
    for i in range(frames.shape[1]):
        dr = [np.linalg.norm(rep[i][types == 0] - x[types == 0], axis=1) for rep in frames]
        direct.append(np.mean([np.sin(q * d) / (q * d) for d in dr]))
    np.testing.assert_allclose(fs, direct, rtol=1e-12)
    assert 1 > fs[0] > fs[1] > 0  # decays with time; at T = 0.8, t = 3 is beyond tau_alpha (~2.7): below 1/e
    assert fs[1] < np.exp(-1) + 0.1


def test_isolated_particle_is_an_error():
    types = np.zeros(200, dtype=np.int8)
    box = 10.0
    x = np.random.default_rng(0).uniform(0.0, 3.0, (200, 3))  # a dense cluster in one corner ...
    x[0] = [6.5, 6.5, 6.5]  # ... and one particle far from it
    with pytest.raises(ValueError, match="no neighbour"):
        targets.bond_breaking(types, x, x[None, None], box)
