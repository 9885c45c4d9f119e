"""The physics command-line tools and their bad-input errors (docs/method.md §8.3)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tbotan.md import xyz
from tests import reference as ref


def tbotan(*args):
    return subprocess.run([sys.executable, "-m", "tbotan", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def conf_file(tmp_path_factory, liquid_500):
    types, x, box = liquid_500
    path = tmp_path_factory.mktemp("conf") / "liquid.xyz"
    xyz.write(path, types, x, box)
    return path


def test_xyz_round_trip_is_exact(tmp_path, liquid_500):
    types, x, box = liquid_500
    xyz.write(tmp_path / "a.xyz", types, x, box)
    c = xyz.read(tmp_path / "a.xyz")
    assert np.array_equal(c.types, types) and np.array_equal(c.positions, x) and c.box == box


def test_energy_json(conf_file):
    out = tbotan("energy", conf_file, "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    c = xyz.read(conf_file)
    e_ref, f_ref = ref.energy_forces(c.types, c.positions, c.box)
    assert r["energy_per_particle"] == pytest.approx(e_ref / len(c.types), rel=1e-12)
    assert r["mean_force"] == pytest.approx(np.linalg.norm(f_ref, axis=1).mean(), rel=1e-10)


def test_quench_writes_an_inherent_structure_that_survives_the_round_trip(conf_file, tmp_path):
    out_file = tmp_path / "is.xyz"
    out = tbotan("quench", conf_file, out_file, "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["mean_force"] < 1e-12 and r["steps"] > 0
    again = json.loads(tbotan("energy", out_file, "--json").stdout)
    assert again["mean_force"] < 1e-12
    assert again["energy_per_particle"] == pytest.approx(r["energy_per_particle"], abs=1e-13)


def test_quench_that_does_not_converge_fails_with_the_residual(conf_file, tmp_path):
    out = tbotan("quench", conf_file, tmp_path / "x.xyz", "--max-steps", 100, "--json")
    assert out.returncode == 1 and "did not converge" in out.stderr and "mean force" in out.stderr
    assert not (tmp_path / "x.xyz").exists()


def test_tau_json_at_high_temperature():
    out = tbotan("tau", "--temperature", 2.0, "--N", 256, "--seed", 1, "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert 0.05 < r["tau_alpha"] < 1.0 and 6.5 < r["q"] < 8.0
    assert r["equilibration_tau"] >= 30


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text,cause",
    [
        ('2\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3\nA 0 0 0\nC 1 1 1\n', "unknown species 'C'"),
        ("2\nProperties=species:S:1:pos:R:3\nA 0 0 0\nB 1 1 1\n", "no Lattice"),
        ('2\nLattice="8 0 0 0 9 0 0 0 8" Properties=species:S:1:pos:R:3\nA 0 0 0\nB 1 1 1\n', "cubic box"),
        ('2\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3\nA 0 0 0\nB nan 1 1\n', "NaN"),
        (
            '3\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3\nA 0 0 0\nB 1 1 1\n',
            "expected 3 particle lines",
        ),
        ('2\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3\nA 1 1 1\nB 1.1 1 1\n', "overlap"),
    ],
)
def test_bad_configurations_name_the_file_and_the_cause(tmp_path, text, cause):
    path = _write(tmp_path / "bad.xyz", text)
    for args in (("energy", path), ("quench", path, tmp_path / "out.xyz")):
        out = tbotan(*args, "--json")
        assert out.returncode == 1
        assert str(path) in out.stderr and cause in out.stderr, out.stderr
        assert out.stdout == ""


def test_validate_reports_every_mistake_with_its_field(tmp_path):
    ok = tbotan("validate", "jobs/quickstart.yaml")
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = _write(tmp_path / "bad.yaml", "N: -5\ntemperatures: [0.8, -1]\nreplicas: 1\ncolour: blue\n")
    out = tbotan("validate", bad)
    assert out.returncode == 1
    for field in ("N", "temperatures", "replicas", "colour"):
        assert f"{field}" in out.stderr, out.stderr


def test_status_of_a_missing_store_says_what_to_run(tmp_path):
    out = tbotan("status", tmp_path / "nothing.zarr")
    assert out.returncode == 1 and "tbotan simulate" in out.stderr
