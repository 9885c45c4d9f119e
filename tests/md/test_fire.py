"""FIRE in OpenMM against an independent NumPy FIRE from the same state (tests/reference.py)."""

import numpy as np
import pytest

from tbotan.md import engine, fire
from tests import reference as ref
from tests.helpers import liquid


def check_same_minimum(types, x, box, platform=None, reference=None):
    result = fire.quench(types, x, box, platform=platform)
    n = len(types)
    assert result.mean_force < 1e-12
    # the reported residual is the one of the returned positions, in double precision
    e, f = engine.energy_and_forces(types, result.positions, box)
    assert engine.mean_force(f) == pytest.approx(result.mean_force, rel=1e-6)
    assert e / n == pytest.approx(result.energy_per_particle, abs=1e-12)
    x_ref, e_ref, mf_ref, steps_ref = reference or ref.fire(types, x, box)
    assert mf_ref < 1e-12
    assert abs(result.energy_per_particle - e_ref / n) < 1e-8
    # same minimum, not only the same energy: positions agree (minimum image)
    d = result.positions - x_ref
    d -= box * np.round(d / box)
    assert np.abs(d).max() < 1e-5
    return result, (x_ref, e_ref, mf_ref, steps_ref)


def test_quench_cpu_then_double_lands_in_the_numpy_minimum(liquid_500):
    types, x, box = liquid_500
    result, _ = check_same_minimum(types, x, box)
    assert result.platform.startswith("CPU") and "Reference" in result.platform
    assert -7.1 < result.energy_per_particle < -6.6


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.8, 0.5])
def test_quench_n1000_reference_and_staged(temperature):
    types, x, box = liquid(1000, temperature, duration=20.0, seed=3)
    staged, numpy_fire = check_same_minimum(types, x, box)
    double, _ = check_same_minimum(types, x, box, platform="Reference", reference=numpy_fire)
    assert double.platform.startswith("Reference")
    assert -7.0 < staged.energy_per_particle < -6.7
    print(
        f"T={temperature}: IS energy {staged.energy_per_particle:.10f}, staged {staged.steps} steps "
        f"({staged.platform}), Reference {double.steps}, NumPy {numpy_fire[3]}"
    )


def test_not_converging_raises_with_the_residual(liquid_500):
    types, x, box = liquid_500
    with pytest.raises(fire.FireNotConverged, match=r"mean force \d\.\d+e[-+]\d+"):
        fire.quench(types, x, box, fire.FireParameters(max_steps=200))


def test_overlapping_particles_blow_up_with_a_clear_error(liquid_500):
    types, x, box = liquid_500
    x = x.copy()
    x[1] = x[0] + 1e-3
    with pytest.raises(FloatingPointError, match="blew up|overlapping"):
        fire.quench(types, x, box)
