"""The OpenMM KA system against an independent NumPy implementation (tests/reference.py)."""

import numpy as np
import pytest

from tbotan import core
from tbotan.md import engine, potential
from tests import reference as ref
from tests.helpers import liquid


def pair_distances_near(types, x, box, cutoff, sig, width=0.02):
    i, j, d = ref.pairs(x, box, cutoff + width)
    sel = np.isclose(ref.SIG[types[i], types[j]], sig)
    return np.linalg.norm(d[sel], axis=1)


@pytest.mark.parametrize("n", [500, 4096])
def test_energy_and_forces_match_numpy(n):
    types, x, box = liquid(n, 0.8, duration=1.0)
    # the configuration has pairs just inside and just outside every cutoff
    for sig in (1.0, 0.8, 0.88):
        r = pair_distances_near(types, x, box, 2.5 * sig, sig)
        rc = 2.5 * sig
        assert ((r > rc - 0.02) & (r < rc)).any() and ((r >= rc) & (r < rc + 0.02)).any(), sig
    e, f = engine.energy_and_forces(types, x, box)
    e_ref, f_ref = ref.energy_forces(types, x, box)
    assert abs(e - e_ref) / abs(e_ref) < 1e-10
    rel = np.linalg.norm(f - f_ref, axis=1) / np.linalg.norm(f_ref, axis=1)
    assert rel.max() < 1e-8


def test_cpu_platform_is_single_precision_accurate():
    """The CPU platform's error, as documented in docs/physics.md: ~1e-7 energy, ~1e-5 median force."""
    types, x, box = liquid(500, 0.8)
    e_ref, f_ref = ref.energy_forces(types, x, box)
    e, f = engine.energy_and_forces(types, x, box, engine.choose_platform("mixed", name="CPU"))
    rel = np.linalg.norm(f - f_ref, axis=1) / np.linalg.norm(f_ref, axis=1)
    assert abs(e - e_ref) / abs(e_ref) < 1e-6
    assert np.median(rel) < 1e-4 and rel.max() < 1e-2
    assert rel.max() > 1e-9  # it really is not double precision


@pytest.mark.parametrize("t1,t2", [(0, 0), (0, 1), (1, 1)])
def test_energy_and_force_vanish_continuously_at_cutoff(t1, t2):
    """Two particles: U and F go to zero at rc = 2.5 sigma_ab (shifted force), and are exactly zero beyond."""
    box = 8.0
    sig = [[1.0, 0.8], [0.8, 0.88]][t1][t2]
    eps = [[1.0, 1.5], [1.5, 0.5]][t1][t2]
    rc = 2.5 * sig
    types = np.array([t1, t2])
    out = []
    for r in (rc - 1e-3, rc - 1e-4, rc + 1e-4):
        e, f = engine.energy_and_forces(types, np.array([[1.0, 1, 1], [1.0 + r, 1, 1]]), box)
        out.append((e, f[1, 0]))
    (e1, f1), (e2, f2), (e3, f3) = out
    # U ~ (1/2) U''(rc) (r - rc)^2 and F ~ -U''(rc) (r - rc) near the cutoff: quadratic / linear scaling
    assert e1 < 0 and e2 < 0  # u"(rc) < 0 for LJ at 2.5 sigma
    assert e1 / e2 == pytest.approx(100, rel=1e-2)
    assert f1 / f2 == pytest.approx(10, rel=1e-2)
    assert e3 == 0.0 and f3 == 0.0
    # and the well depth of u(r) - u(rc) - (r - rc) u'(rc) at r = 2^(1/6) sigma is close to -eps
    e_min, _ = engine.energy_and_forces(types, np.array([[1.0, 1, 1], [1.0 + 2 ** (1 / 6) * sig, 1, 1]]), box)
    assert -1.0 * eps < e_min < -0.9 * eps


def test_closed_form_pair_parameters_reproduce_the_table():
    s = np.array([0, 1, 2])
    assert np.allclose(1 + 1.25 * s - 0.75 * s**2, core.EPSILON, rtol=0, atol=1e-15)
    assert np.allclose(1 - 0.34 * s + 0.14 * s**2, core.SIGMA, rtol=0, atol=1e-15)


def test_composition_and_box():
    t = core.species(4096)
    assert (t == 0).sum() == 3277 and t.dtype == np.int8
    assert core.box_length(4096) == pytest.approx(15.0566, abs=1e-4)
    with pytest.raises(ValueError, match="shorter than twice"):
        potential.make_system(core.species(100), core.box_length(100))


@pytest.mark.parametrize("n", [500, 4096])
def test_pressure_matches_the_numpy_virial(n):
    types, x, box = liquid(n, 0.8, duration=1.0)
    p = engine.pressure(types, x, box, 0.8)
    assert p == pytest.approx(ref.pressure(types, x, box, 0.8), rel=1e-7)
    assert engine.pressure(types, x, box, 0.0) == pytest.approx(p - n / box**3 * 0.8, rel=1e-9)  # rho T apart
