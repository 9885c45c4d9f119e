"""The signal ceiling (tbotan.analysis.ceiling) on the real store of jobs/ci.yaml, against independent references:
C_B from all pairs (tests/reference.py), the split-half Pearson and Spearman–Brown written out here, the ridge
regression as the least-squares solution of the augmented system (numpy.linalg.lstsq), the per-particle energies
against the reference energy, and the time axis of ``replica_positions`` read at tau_alpha's index."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from tbotan.analysis import ceiling
from tbotan.data import targets
from tbotan.data.store import tau_alpha_index
from tests import reference as ref

TRAINED = [0.8]  # jobs/ci.yaml trains on 0.8: 1 train, 1 validation, 1 test configuration; 2.0 is all test


@pytest.fixture(scope="module")
def root(ci_store):
    return zarr.open_group(str(ci_store), mode="r")


def _test_configurations(g):
    return np.flatnonzero(g["done"][:] & (g["split"][:] == 2))


def _pearson(x, y):
    x, y = x - x.mean(), y - y.mean()
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def test_the_split_half_r_correlates_c_b_of_each_half_of_the_replicas_at_tau_alpha(root):
    g = root["T2.000"]
    L, i_t = float(g.attrs["L"]), tau_alpha_index(g.attrs["times_tau"])
    K = g["replica_positions"].shape[1]
    assert K == 2
    out = ceiling.split_half(g)
    cs = _test_configurations(g)
    assert len(cs) == 3 and out["replicas"] == K
    each = []
    for c in cs:
        types, thermal = g["types"][c], g["thermal"][c]
        frames = [g["replica_positions"][c, k, i_t].astype(np.float64) for k in range(K)]  # (N, 3) each
        # all runs: the stored C_B (the pipeline computed it from these float32 positions)
        assert ref.bond_breaking_brute(types, thermal, frames, L) == pytest.approx(g["cb"][c, i_t], abs=1e-12)
        first = ref.bond_breaking_brute(types, thermal, frames[: K // 2], L)
        second = ref.bond_breaking_brute(types, thermal, frames[K // 2 :], L)
        a = types == 0
        each.append(_pearson(first[a], second[a]))
    assert out["split_half_r_each"] == pytest.approx(each, abs=1e-12)
    r = np.mean(each)
    R = 2 * r / (1 + r)
    assert out["split_half_r"] == pytest.approx(r, abs=1e-12)
    assert out["split_half_r_sem"] == pytest.approx(np.std(each, ddof=1) / np.sqrt(3), abs=1e-12)
    assert out["reliability"] == pytest.approx(R, abs=1e-12) and out["ceiling_rho"] == pytest.approx(np.sqrt(R))
    # the standard errors carried from r's: dR/dr = 2 / (1 + r)^2, d sqrt(R) / dR = 1 / (2 sqrt(R))
    assert out["reliability_sem"] == pytest.approx(out["split_half_r_sem"] * 2 / (1 + r) ** 2)
    assert out["ceiling_rho_sem"] == pytest.approx(out["reliability_sem"] / (2 * np.sqrt(R)))
    one = ceiling.split_half(root["T0.800"])  # one test configuration: no standard error
    assert len(one["split_half_r_each"]) == 1 and np.isnan(one["split_half_r_sem"])


def test_the_torch_free_neighbours_and_c_b_are_those_of_the_data_layer(root):
    g = root["T0.800"]
    L = float(g.attrs["L"])
    for c in range(3):
        x, types = g["thermal"][c], g["types"][c]
        for cutoff in (1.3, 2.0, 2.5, 2.9):
            mine, theirs = ceiling.neighbour_pairs(x, L, cutoff), targets.neighbour_pairs(x, L, cutoff)
            assert np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1])
            assert mine[2] == pytest.approx(theirs[2], abs=1e-12)
        frames = g["replica_positions"][c].astype(np.float64)
        assert targets.bond_breaking(types, x, frames, L, pairs=ceiling.neighbour_pairs) == pytest.approx(
            targets.bond_breaking(types, x, frames, L), abs=1e-14
        )
    with pytest.raises(ValueError, match="half the box"):
        ceiling.neighbour_pairs(x, L, L / 2)


def _two_times(root, path, times_tau):
    """A copy of the store ``root`` (its temperature groups, the arrays the ceiling reads) with two observation
    times: the replicas and C_B of ``root`` at the index of 1.0 in ``times_tau``, and at the other index every
    replica at the same noisy positions (the two halves agree: r = 1) and, as C_B, |r_thermal - r_IS|."""
    rng = np.random.default_rng(0)
    at = tau_alpha_index(times_tau)
    out = zarr.open_group(str(path), mode="w")
    out.attrs["spec"] = root.attrs["spec"]
    for name, g in root.groups():
        h = out.create_group(name)
        h.attrs.update({k: g.attrs[k] for k in ("T", "L", "N")} | {"times_tau": times_tau})
        pos, cb = g["replica_positions"][:].astype(np.float64), g["cb"][:]
        two_pos = np.repeat(pos, 2, axis=2)  # (configuration, replica, time, particle, xyz)
        two_pos[:, :, 1 - at] = (g["thermal"][:] + 0.4 * rng.standard_normal(pos[:, 0, 0].shape))[:, None]
        two_cb = np.repeat(cb, 2, axis=1)  # (configuration, time, particle)
        d = g["thermal"][:] - g["inherent"][:]
        two_cb[:, 1 - at] = np.linalg.norm(d - float(g.attrs["L"]) * np.round(d / float(g.attrs["L"])), axis=-1)
        for key in ("types", "thermal", "inherent", "done", "split"):
            h.create_array(key, data=g[key][:])
        h.create_array("replica_positions", data=two_pos)
        h.create_array("cb", data=two_cb)
    return out


NUMBERS = ("split_half_r", "reliability", "ceiling_rho", "descriptor_rho", "is_distance_rho")


def test_the_replicas_and_c_b_are_read_at_the_time_at_tau_alpha(root, tmp_path):
    one = ceiling.ceiling_rows(root, TRAINED)
    for times in ([0.5, 1.0], [1.0, 3.0]):  # tau_alpha the second time, then the first
        two = ceiling.ceiling_rows(_two_times(root, tmp_path / f"{times[0]}.zarr", times), TRAINED)
        for mine, theirs in zip(two, one):
            assert mine["time"] == 1.0
            assert [mine[k] for k in NUMBERS] == pytest.approx([theirs[k] for k in NUMBERS], abs=1e-12)
    # the other time holds other numbers: reading it would fail the checks above
    wrong = _two_times(root, tmp_path / "wrong.zarr", [0.5, 1.0])
    for _, g in wrong.groups():
        g.attrs["times_tau"] = [1.0, 3.0]
    for mine, theirs in zip(ceiling.ceiling_rows(wrong, TRAINED), one):
        assert mine["split_half_r"] == pytest.approx(1.0) and mine["is_distance_rho"] == pytest.approx(1.0)
        assert mine["descriptor_rho"] > 0.9  # the descriptors hold |r_thermal - r_IS|
        assert max(abs(theirs[k]) for k in ("split_half_r", "is_distance_rho", "descriptor_rho")) < 0.6


def _a_rows(g, split):
    """Descriptors and C_B at tau_alpha of the A particles of each configuration of ``split``."""
    i_t, L = tau_alpha_index(g.attrs["times_tau"]), float(g.attrs["L"])
    cs = np.flatnonzero(g["done"][:] & (g["split"][:] == split))
    xs, ys = [], []
    for c in cs:
        a = g["types"][c] == 0
        xs.append(ceiling.descriptors(g["types"][c], g["thermal"][c], g["inherent"][c], L)[a])
        ys.append(g["cb"][c, i_t][a])
    return xs, ys


def test_the_descriptor_regression_is_the_least_squares_ridge_picked_on_the_validation_split(root):
    out = ceiling.descriptor_regression(root, TRAINED)
    xs, ys = _a_rows(root["T0.800"], 0)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert out["features"] == x.shape[1] and out["train_particles"] == len(y) == 205  # 80 % of N = 256 are A
    varies = [k for k in range(x.shape[1]) if len(np.unique(x[:, k])) > 1]  # a constant column carries nothing
    assert out["features_used"] == len(varies) < x.shape[1]  # the species of A particles, at least
    x = x[:, varies]
    mu, sd = x.mean(0), x.std(0)
    F = x.shape[1]

    def weights(p):
        """argmin |A w - y|^2 + p |w without the intercept|^2, as the least-squares solution of the augmented
        system [A; sqrt(p) D] w = [y; 0], D = diag(1, ..., 1, 0)."""
        a = np.c_[(x - mu) / sd, np.ones(len(x))]
        big = np.r_[a, np.sqrt(p) * np.diag([1.0] * F + [0.0])]
        return np.linalg.lstsq(big, np.r_[y, np.zeros(F + 1)], rcond=None)[0]

    def predict(w, v):
        return np.c_[(v[:, varies] - mu) / sd, np.ones(len(v))] @ w

    vx, vy = _a_rows(root["T0.800"], 1)
    scores = {p: np.mean([_pearson(predict(weights(p), v), t) for v, t in zip(vx, vy)]) for p in ceiling.PENALTIES}
    assert out["validation_rho"] == pytest.approx(scores, abs=1e-8)
    assert out["penalty"] == max(scores, key=scores.get)
    w = weights(out["penalty"])
    for T in (0.8, 2.0):
        tx, ty = _a_rows(root[f"T{T:.3f}"], 2)
        assert out["T"][T]["rho_each"] == pytest.approx([_pearson(predict(w, v), t) for v, t in zip(tx, ty)], abs=1e-8)
    assert len(out["T"][2.0]["rho_each"]) == 3


def test_the_per_particle_energies_sum_to_the_potential_energy(root):
    g = root["T0.800"]
    L = float(g.attrs["L"])
    for c in range(3):
        types, x = g["types"][c], g["thermal"][c]
        e = ceiling.pair_energy(types, x, L)
        assert e.sum() == pytest.approx(ref.energy_forces(types, x, L)[0], rel=1e-12)
        assert e.sum() / len(types) == pytest.approx(g["energy_thermal"][c], rel=1e-6)  # OpenMM's, stored


def test_the_ceiling_rows_gather_the_three_on_the_same_configurations(root):
    rows = ceiling.ceiling_rows(root)  # the training temperatures from the store's spec
    ridge = ceiling.descriptor_regression(root, TRAINED)
    assert [(r["T"], r["trained"], r["test_configurations"]) for r in rows] == [(0.8, True, 1), (2.0, False, 3)]
    g = root["T2.000"]
    L = float(g.attrs["L"])
    row = rows[1]
    assert row["configurations"] == [0, 1, 2] and row["replicas"] == 2 and row["time"] == 1.0
    assert row["split_half_r"] == ceiling.split_half(g)["split_half_r"]
    assert row["descriptor_rho"] == pytest.approx(np.mean(ridge["T"][2.0]["rho_each"]))
    assert row["descriptor_rho_sem"] == pytest.approx(np.std(ridge["T"][2.0]["rho_each"], ddof=1) / np.sqrt(3))
    each = []
    for c in range(3):
        d = g["thermal"][c] - g["inherent"][c]
        d -= L * np.round(d / L)
        a = g["types"][c] == 0
        each.append(_pearson(np.linalg.norm(d, axis=1)[a], g["cb"][c, 0][a]))
    assert row["is_distance_rho"] == pytest.approx(np.mean(each), abs=1e-12)
    assert np.isnan(rows[0]["descriptor_rho_sem"]) and np.isnan(rows[0]["ceiling_rho_sem"])
    only = ceiling.ceiling_rows(root, TRAINED, configurations={2.0: [1]})  # the configurations given are used
    assert only[1]["configurations"] == [1] and only[1]["split_half_r"] == ceiling.split_half(g, [1])["split_half_r"]


def test_the_thermometer_reads_t_off_the_energy_by_the_line_through_the_training_configurations(tmp_path):
    # a store whose energies lie on U/N = 1.5 T - 7 at the training configurations (split 0) of 0.6 and 1.0: the line
    # recovers T = (U/N + 7) / 1.5 wherever it is read, whatever the split and whether the T was trained
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    energies = {0.6: [-6.1, -6.1, -6.2, -6.0], 0.8: [-5.9, -5.75], 1.0: [-5.5, -5.5, -5.3, -5.8]}
    splits = {0.6: [0, 0, 2, 2], 0.8: [2, 2], 1.0: [0, 0, 2, 1]}
    for T in energies:
        g = root.create_group(ceiling.group_name(T))
        g.attrs["T"] = T
        g.create_array("energy_thermal", data=np.array(energies[T]))
        g.create_array("split", data=np.array(splits[T], dtype=np.int8))
        g.create_array("done", data=np.ones(len(splits[T]), dtype=bool))
    out = ceiling.energy_thermometer(root, [0.6, 1.0])
    expected = {T: [(e + 7.0) / 1.5 for e, s in zip(energies[T], splits[T]) if s == 2] for T in energies}
    assert out.keys() == expected.keys()
    for T in expected:
        assert out[T] == pytest.approx(expected[T], abs=1e-12)
    assert ceiling.energy_thermometer(root, [0.6, 1.0], {0.8: [1]})[0.8] == pytest.approx([(-5.75 + 7) / 1.5])
    assert ceiling.energy_thermometer(root, [0.6]) == {}  # one training temperature: no line
