"""nnip md / relax / analyze: energy conservation, thermostat temperature, uncertainty stop, RDF, relaxation."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones as LennardJonesCalculator

import nnip
from nnip.cli import main
from nnip.md.analysis import pair_distances, radial_distribution
from nnip.potentials import Ensemble, build_potential


def argon(sigma=3.4, epsilon=0.0104, cutoff=7.0):
    return build_potential({"elements": [18], "terms": [
        {"name": "lj", "config": {"sigma": sigma, "epsilon": epsilon, "cutoff": cutoff, "switch_on": 6.0,
                                  "shift": False}}]}).double()


@pytest.fixture
def liquid(tmp_path):
    """64 argon atoms in an orthorhombic box at about the liquid density (1.4 g/cm^3), slightly rattled."""
    atoms = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 4))
    atoms.rattle(0.1, seed=0)
    path = tmp_path / "argon.extxyz"
    nnip.write(path, atoms)
    return path


def direct_rdf(frames, r_max, bins):
    """Minimum-image g(r) for one element in orthorhombic cells, by brute force in numpy."""
    edges = np.linspace(0, r_max, bins + 1)
    total = np.zeros(bins)
    for atoms in frames:
        length = np.diag(atoms.cell.array)
        d = atoms.positions[:, None, :] - atoms.positions[None, :, :]
        d -= length * np.round(d / length)
        r = np.linalg.norm(d, axis=2)[~np.eye(len(atoms), dtype=bool)]
        total += np.histogram(r, bins=edges)[0]
    n, volume = len(frames[0]), frames[0].cell.volume
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return total / (len(frames) * n * (n - 1) / volume * shells)


def test_langevin_temperature_rdf_and_analyze(tmp_path, liquid):
    nnip.save(argon(), tmp_path / "argon.pt")
    args = ["md", str(tmp_path / "argon.pt"), str(liquid), "--steps", "4000", "--timestep", "5",
            "--temperature", "90", "--thermostat", "langevin", "--friction", "0.01", "--interval", "20",
            "--output", str(tmp_path / "md.extxyz"), "--log", str(tmp_path / "md.csv")]
    assert main(args) == 0  # 20 ps
    assert main(["analyze", str(tmp_path / "md.extxyz"), "--log", str(tmp_path / "md.csv"), "--rmax", "5.5",
                 "--output", str(tmp_path / "analysis")]) == 0
    summary = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert summary["temperature_mean"] == pytest.approx(90.0, rel=0.05)
    for name in ("rdf.png", "total_energy.png", "temperature.png"):
        assert (tmp_path / "analysis" / name).is_file()
    frames = nnip.read(tmp_path / "md.extxyz")[100:]
    (r, g), = radial_distribution(frames, 5.5, 55).values()
    np.testing.assert_allclose(g, direct_rdf(frames, 5.5, 55), rtol=1e-10, atol=1e-12)
    assert 3.6 < r[int(g.argmax())] < 4.0  # first neighbour shell of liquid argon near 2^(1/6) sigma


def test_nve_conserves_energy_in_float64(tmp_path, liquid):
    nnip.save(argon(), tmp_path / "argon.pt")
    assert main(["md", str(tmp_path / "argon.pt"), str(liquid), "--steps", "1000", "--timestep", "2",
                 "--temperature", "60", "--thermostat", "nve", "--dtype", "float64",
                 "--output", str(tmp_path / "nve.extxyz"), "--log", str(tmp_path / "nve.csv")]) == 0
    from nnip.md.analysis import energy_drift, read_md_log

    log = read_md_log(tmp_path / "nve.csv")
    assert abs(energy_drift(log["time_fs"], log["total_energy"], 64)) < 1e-3  # eV/atom/ps


def test_md_stops_when_the_ensemble_disagrees(tmp_path, liquid):
    ensemble = Ensemble([argon(3.40), argon(3.45), argon(3.50)])
    nnip.save(ensemble, tmp_path / "ensemble.pt")
    output = tmp_path / "md.extxyz"
    assert main(["md", str(tmp_path / "ensemble.pt"), str(liquid), "--steps", "500", "--timestep", "5",
                 "--temperature", "90", "--stop-uncertainty", "1e-6", "--output", str(output)]) == 0
    frames = nnip.read(output)
    assert len(frames) == 2 and frames[-1].info["max_force_std"] > 1e-6  # the start and the stopping frame


def test_relax_with_the_cell_reaches_the_lj_lattice_constant(tmp_path):
    crystal = bulk("Ar", "fcc", a=5.6, cubic=True)
    nnip.write(tmp_path / "fcc.extxyz", crystal)
    nnip.save(argon(cutoff=10.0), tmp_path / "argon.pt")
    assert main(["relax", str(tmp_path / "argon.pt"), str(tmp_path / "fcc.extxyz"), "--cell", "--fmax", "1e-4",
                 "--output", str(tmp_path / "relaxed.extxyz")]) == 0
    relaxed = nnip.read(tmp_path / "relaxed.extxyz")[0]
    a = relaxed.cell[0, 0]
    assert 5.2 < a < 5.35  # LJ fcc: about 1.09 * 2^(1/6) sigma * sqrt(2) = 5.26 Å for sigma 3.4 Å


def test_pair_distances_of_a_molecule_put_each_pair_in_its_bin_once():
    from ase.build import molecule

    water = molecule("H2O")  # O-H 0.969 Å twice, H-H 1.527 Å
    stretched = water.copy()
    stretched.positions *= 1.1
    curves = pair_distances([water, stretched], 2.0, 200)
    assert set(curves) == {"H-H", "H-O"}
    for name, (r, density) in curves.items():
        assert density.sum() * (r[1] - r[0]) == pytest.approx(1.0)  # a probability density in 1/Å
    r, density = curves["H-O"]
    expected = [water.get_distance(0, 1), stretched.get_distance(0, 1)]
    peaks = r[density > 0]
    assert len(peaks) == 2 and np.allclose(peaks, expected, atol=0.005)
    assert density[density > 0] == pytest.approx([50.0, 50.0])  # two equal halves of 1 over bins of 0.01 Å


def test_memory_option_streams_with_the_same_result(tmp_path, monkeypatch):
    """``--memory stream`` runs the model's messages streamed over chunks of edges (every step), ``keep`` never;
    the relaxed structures agree to rounding."""
    from nnip.nn import execution

    torch.manual_seed(0)
    model = build_potential({"elements": [29], "terms": [{"name": "schnet", "config": {"features": 8,
                                                                                          "interactions": 2}}]})
    nnip.save(model, tmp_path / "schnet.pt")
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.1, seed=1)
    nnip.write(tmp_path / "cu.extxyz", crystal)
    streamed = []
    apply = execution._StreamedMessages.apply
    monkeypatch.setattr(execution._StreamedMessages, "apply", lambda *args: streamed.append(1) or apply(*args))
    relaxed = {}
    for memory in ("keep", "stream"):
        streamed.clear()
        output = tmp_path / f"{memory}.extxyz"
        assert main(["relax", str(tmp_path / "schnet.pt"), str(tmp_path / "cu.extxyz"), "--steps", "5",
                     "--memory", memory, "--output", str(output)]) == 0
        assert bool(streamed) == (memory == "stream")
        relaxed[memory] = nnip.read(output)[0].positions
    assert np.abs(relaxed["stream"] - crystal.positions).max() > 1e-4  # it moved
    np.testing.assert_allclose(relaxed["stream"], relaxed["keep"], rtol=0, atol=1e-9)


class _BreaksDown(LennardJonesCalculator):
    """ASE's Lennard-Jones, but NaN forces from its ``after``-th calculation (the geometry of one step)."""

    def __init__(self, after: int):
        super().__init__(sigma=3.4, epsilon=0.0104, rc=7.0)
        self.after, self.calls = after, 0

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.calls += 1
        if self.calls == self.after:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


def test_md_stops_at_a_non_finite_step_with_the_last_good_frame_written(tmp_path, liquid):
    from nnip.errors import NumericalError
    from nnip.md.run import MDSettings, run_md

    atoms = nnip.read(liquid)[0]
    trajectory = tmp_path / "md.extxyz"
    with pytest.raises(NumericalError, match=r"MD step 7: the forces are not finite \(NaN or inf\); the run stopped, "
                                             r"and .*md.extxyz ends with the last good frame \(step 6\)"):
        run_md(atoms, _BreaksDown(after=8), MDSettings(steps=20, interval=5, thermostat="nve"), trajectory,
               progress=False)
    frames = nnip.read(trajectory)
    assert [f.info["step"] for f in frames] == [0, 5, 6]
    assert all(np.isfinite(f.get_forces()).all() and np.isfinite(f.positions).all() for f in frames)


def test_a_second_md_into_the_same_trajectory_is_refused_while_the_first_runs(tmp_path, liquid):
    from nnip.errors import ConfigError
    from nnip.md.run import MDSettings, run_md
    from nnip.runlock import file_lock

    trajectory = tmp_path / "md.extxyz"
    with file_lock(trajectory):  # as a running `nnip md --output md.extxyz` holds it
        with pytest.raises(ConfigError, match=r"md.extxyz: another nnip run is writing this file \(pid \d+"):
            run_md(nnip.read(liquid)[0], LennardJonesCalculator(), MDSettings(steps=1), trajectory, progress=False)
    assert not trajectory.exists()
