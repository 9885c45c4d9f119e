"""Extended XYZ through ASE (tbotan.md.xyz): exact round trips of double-precision structures, files of other
writers, and errors that name the file."""

import numpy as np
import pytest

from tbotan import core
from tbotan.errors import ConfigurationError
from tbotan.md import fire, xyz
from tests.helpers import liquid


def test_an_inherent_structure_survives_write_and_ase_read_bit_for_bit(tmp_path):
    types, x, box = liquid(256, 0.8)
    r = fire.quench(types, core.wrap(x, box), box, fire.FireParameters(tolerance=1e-10))
    xyz.write(tmp_path / "is.xyz", types, r.positions, box, comment="energy=-7.1")
    c = xyz.read(tmp_path / "is.xyz")
    np.testing.assert_array_equal(c.positions, r.positions)
    np.testing.assert_array_equal(c.types, types)
    assert c.box == box and c.types.dtype == np.int8


def test_files_with_extra_columns_or_no_properties_are_read(tmp_path):
    path = tmp_path / "extra.xyz"
    path.write_text(
        '2\nLattice="8.5 0 0 0 8.5 0 0 0 8.5" Properties=species:S:1:pos:R:3:propensity:R:1 pbc="T T T" step=3\n'
        "B 0.5 1.25 2 0.1\nA 3 4 5.0000000000000009 0.2\n"
    )
    c = xyz.read(path)
    assert c.types.tolist() == [1, 0] and c.box == 8.5 and c.positions[1, 2] == 5.0000000000000009
    bare = tmp_path / "bare.xyz"
    bare.write_text('2\nLattice="8 0 0 0 8 0 0 0 8"\nA 0 0 0\nB 1 1 1\n')
    assert xyz.read(bare).types.tolist() == [0, 1]


def test_ase_own_writer_rounds_positions_which_is_why_tbotan_writes_its_own(tmp_path):
    """If this fails, ASE keeps 17 digits: tbotan.md.xyz.write could then be ase.io.write."""
    import ase
    import ase.io

    x = np.array([[0.12345678901234567, 1.0, 2.0]])
    ase.io.write(tmp_path / "ase.xyz", ase.Atoms("H", positions=x, cell=[8.0] * 3, pbc=True), format="extxyz")
    assert ase.io.read(tmp_path / "ase.xyz").positions[0, 0] != x[0, 0]


@pytest.mark.parametrize(
    "text,cause",
    [
        ("", "not an extended XYZ file"),
        ('x\nLattice="8 0 0 0 8 0 0 0 8"\nA 0 0 0\n', "first line must be the particle count"),
        ('1\nLattice="8 0 0 0 8 0 0 0 8" Properties=pos:R:3:species:S:1\n0 0 0 A\n', "Properties must start"),
        ('1\nLattice="8 0 0 0 8 0 0 0 8"\nA 0 zero 0\n', "not a readable extended XYZ file"),
        ('2\nLattice="8 0 0 0 8 0 0 0 8"\nA 0 0 0\nH 1 1 1\n', "line 4: unknown species 'H'"),
        ('1\nLattice="8 0 0 0 8 0 0 0 -8"\nA 0 0 0\n', "cubic box"),
    ],
)
def test_bad_files_raise_configuration_errors_naming_the_file(tmp_path, text, cause):
    path = tmp_path / "bad.xyz"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=cause) as e:
        xyz.read(path)
    assert str(path) in str(e.value)
