"""Model files: round trip, dtype, and a clear CheckpointError for anything that is not one."""

import pickle

import pytest
import torch
from ase import Atoms
from ase.build import molecule

import nnip
from nnip.cli import main
from nnip.errors import CheckpointError
from nnip.potentials import LennardJones, LennardJonesConfig, Morse, MorseConfig, Potential
from nnip.potentials.files.serialization import FORMAT_VERSION
from nnip.testing.structures import evaluate


def _potential():
    terms = [LennardJones(LennardJonesConfig(epsilon=0.01, sigma=2.5, cutoff=5.0), ["C", "H", "O"]),
             Morse(MorseConfig(cutoff=4.0, switch_on=3.0), ["C", "H", "O"])]
    return Potential(terms, ["C", "H", "O"], e0={"H": -13.6, "C": -1025.3, "O": -2035.6}, shift=0.25)


def test_round_trip_restores_weights_e0_and_shift(tmp_path):
    potential = _potential()
    with torch.no_grad():
        potential.terms[0].epsilon.raw.add_(0.123)  # as if trained
    nnip.save(potential, tmp_path / "m.pt")
    loaded = nnip.load(tmp_path / "m.pt")
    assert loaded.spec() == potential.spec()
    for name, tensor in potential.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    atoms = molecule("CH3CH2OH")
    assert evaluate(loaded, atoms)["energy"] == evaluate(potential, atoms)["energy"]


def test_file_is_plain_data_readable_with_weights_only(tmp_path):
    nnip.save(_potential(), tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["format"] == "nnip-model" and payload["format_version"] == FORMAT_VERSION
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())


def test_float32_model_keeps_float64_reference_energies(tmp_path):
    potential = _potential().float()
    assert potential.dtype == torch.float32
    assert potential.e0.dtype == torch.float64 and potential.e0[1].item() == -1025.3
    nnip.save(potential, tmp_path / "m.pt")
    loaded = nnip.load(tmp_path / "m.pt")
    assert loaded.dtype == torch.float32 and loaded.e0.dtype == torch.float64


def test_not_a_model_truncated_newer_and_pickled_code(tmp_path):
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text.pt: is not an nnip model file"):
        nnip.load(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other.pt: is not an nnip model file \(no 'nnip-model' header\)"):
        nnip.load(tmp_path / "other.pt")
    nnip.save(_potential(), tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.pt: is truncated or corrupted"):
        nnip.load(tmp_path / "cut.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=r"new.pt: written by a newer nnip .*upgrade nnip"):
        nnip.load(tmp_path / "new.pt")
    torch.save({"format": "nnip-model", "code": pickle.loads(pickle.dumps(ValueError("x")))}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match=r"code.pt: holds pickled objects \(exceptions.ValueError\), which nnip "
                                              r"never loads"):
        nnip.load(tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="no such model file"):
        nnip.load(tmp_path / "missing.pt")


def test_save_does_not_corrupt_an_existing_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    nnip.save(_potential(), path)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        nnip.save(_potential(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_empty_file_and_malformed_spec_are_checkpoint_errors(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: is not an nnip model file"):
        nnip.load(tmp_path / "empty.pt")
    nnip.save(_potential(), tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["spec"]["elements"] = [999]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt: malformed model description"):
        nnip.load(tmp_path / "bad.pt")
    payload["dtype"] = "float16"
    torch.save(payload, tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match="unknown dtype 'float16'"):
        nnip.load(tmp_path / "half.pt")


def test_format_1_files_with_pair_values_still_load(tmp_path):
    """Format 1 stored pair parameters as `values`; format 2 as `unit * raw`. Old files give the same model."""
    potential = _potential()
    with torch.no_grad():
        potential.terms[0].sigma.raw.mul_(1.07)
    nnip.save(potential, tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    old = {}
    for key, tensor in payload["state_dict"].items():
        if key.endswith(".raw"):
            prefix = key[: -len("raw")]
            old[prefix + "values"] = tensor * payload["state_dict"][prefix + "unit"]
        elif not key.endswith(".unit"):
            old[key] = tensor
    torch.save({**payload, "format_version": 1, "state_dict": old}, tmp_path / "old.pt")
    atoms = molecule("CH3CH2OH")
    assert evaluate(nnip.load(tmp_path / "old.pt"), atoms)["energy"] == pytest.approx(
        evaluate(potential, atoms)["energy"], rel=1e-14)


class _Marker:
    """Pickled, it would create a file when loaded without weights_only."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_checkpoint_is_refused_in_one_line_with_the_real_reason(tmp_path, capsys):
    """torch printed a 2-line warning, then nnip an error cut mid-word calling the file 'truncated'."""
    marker = tmp_path / "ran"
    torch.save({"format": "nnip-model", "payload": _Marker(marker)}, tmp_path / "evil.pt")
    data = tmp_path / "data.extxyz"
    nnip.write(data, [Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]])])
    assert main(["evaluate", str(tmp_path / "evil.pt"), str(data)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Warning" not in captured.err, captured.err
    assert lines[0].endswith("evil.pt: holds pickled objects (io.open), which nnip never loads (a model file holds "
                             "only tensors, numbers and text; nothing in it was run)")
    assert not marker.exists()
