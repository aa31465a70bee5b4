"""Reading data: formats, units, labels, and one clear error per kind of bad input."""

import os

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.io import write as ase_write

import nnip
from nnip.data import bundled, inspect
from nnip.errors import DataError
from nnip.units import kcal_mol

GOOD_FRAME = """3
Properties=species:S:1:pos:R:3:forces:R:3 energy=-10.5 pbc="F F F"
O 0.0 0.0 0.0 0.1 0.2 0.3
H 0.96 0.0 0.0 -0.1 0.0 0.0
H -0.24 0.93 0.0 0.0 -0.2 -0.3
"""


def _file(tmp_path, text, name="data.extxyz"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_bundled_ethanol_with_labels_in_ev():
    frames = nnip.read(bundled("ethanol_train.extxyz"), require=("energy", "forces"))
    assert len(frames) == 250
    atoms = frames[0]
    assert atoms.get_chemical_formula() == "C2H6O"
    assert -4211 < atoms.get_potential_energy() < -4208
    assert atoms.get_forces().shape == (9, 3)
    assert not atoms.pbc.any()
    assert atoms.info["config_type"] == "Training_set"


def test_reads_bundled_periodic_silicon():
    frames = nnip.read(bundled("si_train.extxyz"), index="0:3")
    assert len(frames) == 3 and frames[0].pbc.all() and frames[0].get_volume() > 100


def test_index_selection_keeps_file_frame_numbers_in_errors(tmp_path):
    bad = GOOD_FRAME.replace("energy=-10.5", "energy=nan")
    path = _file(tmp_path, GOOD_FRAME * 2 + bad)
    assert len(nnip.read(path, index=":2")) == 2
    assert len(nnip.read(path, index=0)) == 1
    with pytest.raises(DataError, match=r"frame 2: energy is nan"):
        nnip.read(path, index="-1")


def test_md17_npz_both_key_sets_in_kcal_per_mol(tmp_path):
    ethanol = nnip.read(bundled("ethanol_train.extxyz"), index=":5")
    positions = np.stack([a.positions for a in ethanol])
    energies_kcal = np.array([a.get_potential_energy() for a in ethanol]) / kcal_mol
    forces_kcal = np.stack([a.get_forces() for a in ethanol]) / kcal_mol
    z = ethanol[0].numbers
    np.savez(tmp_path / "md17.npz", R=positions, z=z, E=energies_kcal[:, None], F=forces_kcal)
    np.savez(tmp_path / "rmd17.npz", coords=positions, nuclear_charges=z, energies=energies_kcal, forces=forces_kcal)
    for name in ("md17.npz", "rmd17.npz"):
        frames = nnip.read(tmp_path / name, require=("energy", "forces"))
        assert len(frames) == 5
        assert frames[2].get_potential_energy() == pytest.approx(ethanol[2].get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(frames[2].get_forces(), ethanol[2].get_forces(), rtol=1e-12)
    in_ev = nnip.read(tmp_path / "rmd17.npz", energy_unit="eV")
    assert in_ev[0].get_potential_energy() == pytest.approx(energies_kcal[0])


def test_traj_and_ase_db_and_custom_keys(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
    ase_write(tmp_path / "a.traj", [atoms, atoms])
    with connect(tmp_path / "a.db") as db:
        db.write(atoms)
    assert len(nnip.read(tmp_path / "a.traj", require=("energy", "forces"))) == 2
    assert nnip.read(tmp_path / "a.db")[0].get_potential_energy() == -1.0
    custom = _file(tmp_path, GOOD_FRAME.replace("energy=", "REF_energy=").replace("forces:R", "REF_forces:R"))
    frame = nnip.read(custom, energy_key="REF_energy", forces_key="REF_forces", require=("energy", "forces"))[0]
    assert frame.get_potential_energy() == -10.5 and frame.get_forces()[0, 2] == 0.3


def test_hartree_units_convert_forces_too(tmp_path):
    frame = nnip.read(_file(tmp_path, GOOD_FRAME), energy_unit="Hartree")[0]
    assert frame.get_potential_energy() == pytest.approx(-10.5 * 27.211386, rel=1e-6)
    assert frame.get_forces()[0, 0] == pytest.approx(0.1 * 27.211386, rel=1e-6)


def test_write_round_trip_and_atomic_replacement(tmp_path):
    frames = nnip.read(bundled("ethanol_test.extxyz"), index=":3")
    path = tmp_path / "out.extxyz"
    nnip.write(path, frames)
    again = nnip.read(path, require=("energy", "forces"))
    assert [a.get_potential_energy() for a in again] == [a.get_potential_energy() for a in frames]
    before = path.read_bytes()
    with pytest.raises(Exception):
        nnip.write(path, [object()])  # not a structure: the writer fails midway
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.extxyz"]
    umask = os.umask(0o022)
    try:
        nnip.write(path, frames)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # like any file the user creates, not mkstemp's 0600


BAD_INPUTS = {
    "empty": ("", r"data.extxyz: file is empty"),
    "blank": ("\n\n  \n", r"file is empty"),
    "bad_count": ("three\ncomment\n", r"line 1 \(frame 0\): expected the number of atoms, found 'three'"),
    "not_a_number": (GOOD_FRAME + GOOD_FRAME.replace("0.96", "0.9x6"),
                     r"line 9 \(frame 1\): column 'pos' holds '0.9x6', not a number"),
    "columns": (GOOD_FRAME.replace("H 0.96 0.0 0.0 -0.1 0.0 0.0", "H 0.96 0.0 0.0 -0.1 0.0"),
                r"line 4 \(frame 0\): expected 7 columns .* found 6"),
    "truncated": (GOOD_FRAME + "".join(GOOD_FRAME.splitlines(keepends=True)[:4]), r"line 10 \(frame 1\): file ends after 2 of 3 atoms"),
    "unknown_element": (GOOD_FRAME.replace("H -0.24", "Qq -0.24"), r"line 5 \(frame 0\): unknown element 'Qq'"),
    "nan_energy": (GOOD_FRAME.replace("energy=-10.5", "energy=nan"), r"frame 0: energy is nan"),
    "inf_forces": (GOOD_FRAME.replace("-0.1 0.0 0.0", "-0.1 inf 0.0"), r"frame 0: forces contain NaN or inf \(atom 1\)"),
    "nan_position": (GOOD_FRAME.replace("H 0.96", "H nan"), r"frame 0: positions contain NaN or inf \(atom 1\)"),
    "overlap": (GOOD_FRAME.replace("H 0.96 0.0 0.0", "H 0.1 0.1 0.0"),
                r"frame 0: atoms 0 \(O\) and 1 \(H\) are 0.141 Å apart \(overlapping: closer than 0.3 Å\)"),
    "zero_volume": (GOOD_FRAME.replace('pbc="F F F"', 'pbc="T T T" Lattice="5 0 0 0 5 0 0 0 0"'),
                    r"frame 0: zero-volume cell under pbc"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_error_naming_file_frame_and_problem(tmp_path, case):
    text, pattern = BAD_INPUTS[case]
    path = _file(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as info:
        nnip.read(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_labels_when_required(tmp_path):
    no_forces = _file(tmp_path, GOOD_FRAME.replace(":forces:R:3", "").replace(" 0.1 0.2 0.3", "")
                      .replace(" -0.1 0.0 0.0", "").replace(" 0.0 -0.2 -0.3", ""))
    assert len(nnip.read(no_forces)) == 1
    with pytest.raises(DataError, match=r"frame 0: missing forces"):
        nnip.read(no_forces, require=("energy", "forces"))
    no_energy = _file(tmp_path, GOOD_FRAME.replace("energy=-10.5 ", ""), name="e.extxyz")
    with pytest.raises(DataError, match=r"e.extxyz: frame 0: missing energy"):
        nnip.read(no_energy, require=("energy",))


def test_npz_shape_mismatch_and_unknown_element(tmp_path):
    np.savez(tmp_path / "bad.npz", R=np.zeros((2, 3, 3)), z=np.array([1, 1]), E=np.zeros(2), F=np.zeros((2, 3, 3)))
    with pytest.raises(DataError, match=r"bad.npz: shape mismatch"):
        nnip.read(tmp_path / "bad.npz")
    np.savez(tmp_path / "f.npz", R=np.eye(3)[None] * 2, z=np.array([1, 1, 1]), E=np.zeros(1), F=np.zeros((1, 2, 3)))
    with pytest.raises(DataError, match=r"f.npz: shape mismatch: F has shape \(1, 2, 3\), expected \(1, 3, 3\)"):
        nnip.read(tmp_path / "f.npz")
    np.savez(tmp_path / "z.npz", R=np.eye(3)[None] * 2, z=np.array([1, 0, 1]))
    with pytest.raises(DataError, match=r"z.npz: frame 0: unknown element \(atomic number 0\)"):
        nnip.read(tmp_path / "z.npz")
    np.savez(tmp_path / "k.npz", positions=np.zeros((1, 1, 3)))
    with pytest.raises(DataError, match=r"k.npz: no MD17 key set"):
        nnip.read(tmp_path / "k.npz")


def test_missing_file_and_unknown_unit(tmp_path):
    with pytest.raises(DataError, match="nope.xyz: no such file"):
        nnip.read(tmp_path / "nope.xyz")
    with pytest.raises(DataError, match="unknown energy unit 'kcal'"):
        nnip.read(_file(tmp_path, GOOD_FRAME), energy_unit="kcal")


def test_inspect_lists_every_problem_and_keeps_valid_frames(tmp_path):
    text = GOOD_FRAME + GOOD_FRAME.replace("energy=-10.5", "energy=inf") + GOOD_FRAME.replace("H 0.96", "H 0.05")
    result = inspect(_file(tmp_path, text), require=("energy", "forces"))
    assert result.frame_ids == [0]
    assert len(result.problems) == 2
    assert "frame 1: energy is inf" in result.problems[0]
    assert "frame 2: atoms 0 (O) and 1 (H)" in result.problems[1]
    with pytest.raises(DataError, match=r"and 1 more problem; run `nnip info"):
        nnip.read(_file(tmp_path, text, name="b.extxyz"))


def test_bad_index_unknown_require_bad_npz_and_json_are_clear_errors(tmp_path):
    from nnip.errors import ConfigError

    path = _file(tmp_path, GOOD_FRAME)
    with pytest.raises(DataError, match=r"bad frame index 'abc'"):
        nnip.read(path, index="abc")
    with pytest.raises(DataError, match=r"frame 5 does not exist \(file has 1 frames\)"):
        nnip.read(path, index=5)
    with pytest.raises(ConfigError, match=r"require: unknown label 'bogus'"):
        nnip.read(path, require=("bogus",))
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(DataError, match=r"single.npz: holds a single array"):
        nnip.read(tmp_path / "single.npz")
    (tmp_path / "m.json").write_text('[{"structure": {"lattice": {"matrix": [[3,0,0],[0,3,0],[0,0,3]]}, '
                                     '"sites": [{"species": [{"element": "Si", "occu": 1}], "xyz": [0,0,0]}]}, '
                                     '"outputs": {"energy": "abc"}}]')
    with pytest.raises(DataError, match=r"m.json: frame 0: malformed mlearn entry"):
        nnip.read(tmp_path / "m.json")
    with pytest.raises(DataError, match=r"cannot tell the file format"):
        nnip.write(tmp_path / "out.unknownsuffix", nnip.read(path))


def test_mlearn_json_reader(tmp_path):
    (tmp_path / "m.json").write_text('[{"structure": {"lattice": {"matrix": [[3,0,0],[0,3,0],[0,0,3]]}, '
                                     '"sites": [{"species": [{"element": "Si", "occu": 1}], "xyz": [0,0,0]}, '
                                     '{"species": [{"element": "Si", "occu": 1}], "xyz": [1.5,1.5,1.5]}]}, '
                                     '"group": "Bulk", "outputs": {"energy": -10.0, "forces": [[0,0,1],[0,0,-1]], '
                                     '"virial_stress": [1,2,3,4,5,6]}}]')
    atoms = nnip.read(tmp_path / "m.json", require=("energy", "forces"))[0]
    assert atoms.pbc.all() and atoms.info["config_type"] == "Bulk"
    assert atoms.get_potential_energy() == -10.0 and atoms.get_forces()[1, 2] == -1.0
