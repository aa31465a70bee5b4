"""Values that no structure has are refused with one line naming the file, the frame and the problem:
damaged archives, numbers that are not real, magnitudes beyond any physical value, an empty archive,
an extxyz comment that does not parse; and no input makes the neighbour list end the process."""

import subprocess
import sys

import numpy as np
import pytest
from ase.neighborlist import primitive_neighbor_list

import nnip
from nnip.data.neighbors import neighbor_list
from nnip.errors import DataError

from test_io import GOOD_FRAME, _file

R = np.array([[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]] * 2)
Z = np.array([8, 1, 1])


def _npz(tmp_path, name="data.npz", **arrays):
    fields = {"coords": R, "nuclear_charges": Z, "energies": np.zeros(2), "forces": np.zeros_like(R)}
    fields.update(arrays)
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in fields.items() if v is not None})
    return path


def _error(path) -> str:
    with pytest.raises(DataError) as caught:
        nnip.read(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_damaged_archives_are_named_not_raised_as_zip_errors(tmp_path):
    good = _npz(tmp_path).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    assert "truncated or corrupted" in _error(truncated)
    flipped = bytearray(good)
    flipped[200] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    damaged = tmp_path / "flipped.npz"
    damaged.write_bytes(bytes(flipped))
    assert "unreadable array" in _error(damaged)


@pytest.mark.parametrize(("arrays", "problem"), [
    ({"nuclear_charges": np.array([8.0, 1.5, 1.0])}, "nuclear_charges must be whole atomic numbers, got 1.5"),
    ({"coords": R + 0.5j}, "coords are complex numbers, not real numbers"),
    ({"forces": np.zeros(R.shape, dtype=bool)}, "forces are booleans, not real numbers"),
    ({"energies": np.array([0.0, 1e300])}, "frame 1: energy: a magnitude of"),
    ({"forces": np.full(R.shape, 1e300)}, "frame 0: forces: a magnitude of"),
    ({"coords": R + np.array([0.0, 1e6, 0.0])}, "has a coordinate of 1e+06 Å, beyond 100000 Å"),
])
def test_values_no_structure_has_are_refused(tmp_path, arrays, problem):
    assert problem in _error(_npz(tmp_path, **arrays))


def test_an_archive_without_frames_is_empty_like_any_other_file(tmp_path):
    path = _npz(tmp_path, coords=np.zeros((0, 3, 3)), energies=np.zeros(0), forces=np.zeros((0, 3, 3)))
    assert _error(path).endswith("file is empty (no structures)")


def test_extxyz_energy_and_forces_of_huge_magnitude(tmp_path):
    text = GOOD_FRAME.replace("energy=-10.5", "energy=-1e300").replace("0.1 0.2 0.3", "1e300 0.2 0.3")
    message = _error(_file(tmp_path, text))
    assert "frame 0: energy: a magnitude of 3.33e+299 eV per atom exceeds 1e+07" in message


def test_an_unterminated_quote_in_a_comment_line_is_an_error_not_a_lost_energy(tmp_path):
    text = GOOD_FRAME.replace('pbc="F F F"', 'config_type="md energy=-3.0')
    assert "line 2 (frame 0): comment line has an unterminated quote" in _error(_file(tmp_path, text))
    fine = GOOD_FRAME.replace('pbc="F F F"', 'note="a \\"quoted\\" word" pbc="F F F"')
    assert nnip.read(_file(tmp_path, fine, "fine.extxyz"))[0].get_potential_energy() == -10.5


def test_a_far_coordinate_is_one_line_from_nnip_info_not_a_signal(tmp_path):
    """vesin ended the process with SIGFPE (exit 136) on such a structure."""
    text = GOOD_FRAME.replace("H 0.96 0.0 0.0", "H 1e6 0.0 0.0").replace("H -0.24 0.93 0.0", "H -0.24 0.93 1e6")
    path = _file(tmp_path, text)
    done = subprocess.run([sys.executable, "-m", "nnip", "info", str(path)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr  # nnip info lists the problems of a file and exits 1
    assert "frame 0: atom 1 has a coordinate of 1e+06 Å, beyond 100000 Å" in done.stdout, done.stdout


def test_an_elongated_box_vesin_cannot_bin_gets_the_full_list():
    """Within the coordinate bound, a box of more than 10^5 cells that is thin along one direction made vesin
    divide by zero; such boxes go to ASE's binning, and the list is the same as ASE's."""
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.2, 0.0], [9e4, 0.0, 0.0], [0.0, 0.0, 9e4],
                          [9e4, 0.0, 0.5]])
    cell, pbc = np.zeros((3, 3)), np.zeros(3, dtype=bool)
    for full in (True, False):
        edge_index, shifts = neighbor_list(positions, cell, pbc, 1.5, full=full)
        i, j = primitive_neighbor_list("ij", pbc, cell, positions, 1.5)
        expected = {(a, b) for a, b in zip(i, j) if full or a < b}
        assert set(map(tuple, edge_index.T.tolist())) == expected and not shifts.any()
