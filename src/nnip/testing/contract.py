"""The contract test suite every potential inherits.

Subclass :class:`PotentialContract` in a test module, set ``distance`` (a typical
interatomic distance for the potential, Å) and define ``make_potential`` returning a
fresh :class:`~nnip.potentials.Potential`; pytest then runs every check below on it in
float64: finite-difference forces and stress, gradcheck and gradgradcheck, rotation
(with reflection), translation and permutation symmetry, periodic images, batch equals
single, no gradient across structures, locality, smoothness at the cutoff, lone atom
equals E0, save/load round trip, ASE calculator agreement, a few optimiser steps
lowering a loss, and energy conservation in NVE (marked slow).
"""

from __future__ import annotations

import abc
import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from nnip import keys
from nnip.calculator import Calculator
from nnip.data.batching import collate
from nnip.data.graph import AtomicGraph
from nnip.md.velocities import maxwell_boltzmann
from nnip.potentials.files.serialization import load, save
from nnip.testing.structures import cluster, energy_of, evaluate, periodic_cell, random_rotation, rotated

__all__ = ["PotentialContract"]


class PotentialContract(abc.ABC):
    """Mixin of contract tests. Subclasses set ``distance`` and define ``make_potential()``."""

    #: Typical interatomic distance of the potential, Å (sets the size of test structures).
    distance: float = 2.0
    #: Whether the potential has trainable parameters.
    trainable: bool = True
    #: MD timestep for the NVE test, fs.
    nve_timestep: float = 1.0
    #: Adam's learning rate in the trainer test (smaller for models whose many correlated features, such as a
    #: GP's kernel values, move every energy together).
    trainer_lr: float = 1e-3
    #: Finite-difference step, Å.
    fd_step: float = 1e-4
    #: Whether far-apart fragments must add up (False for long-range terms such as electrostatics).
    local: bool = True
    #: Tests this potential fails by design, by test id (e.g. "test_translation_invariance[cluster]") -> why.
    #: They run as strict expected failures: the record stays honest if one starts passing.
    expected_failures: dict[str, str] = {}

    @pytest.fixture(autouse=True)
    def _expected_failure(self, request):
        reason = self.expected_failures.get(request.node.name)
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    @abc.abstractmethod
    def make_potential(self):
        """A fresh Potential to test (any dtype; the suite converts it to float64)."""

    # fixtures ---------------------------------------------------------------
    @pytest.fixture
    def potential(self):
        torch.manual_seed(0)
        return self.make_potential().double().eval()

    @pytest.fixture
    def structures(self, potential) -> dict[str, Atoms]:
        elements = [int(z) for z in potential.elements]
        return {
            "cluster": cluster(elements, 6, self.distance, seed=1),
            "periodic": periodic_cell(elements, self.distance, seed=2),
        }

    # derivatives --------------------------------------------------------------
    @pytest.mark.parametrize("name", ["cluster", "periodic"])
    def test_forces_are_minus_finite_difference_gradient(self, potential, structures, name):
        atoms = structures[name]
        graph = AtomicGraph.from_atoms(atoms, potential.cutoff + 0.5)
        forces = evaluate(potential, atoms)["forces"]
        positions = graph.positions.clone()
        numeric = np.zeros_like(forces)
        h = self.fd_step
        for a in range(len(atoms)):
            for c in range(3):
                plus, minus = positions.clone(), positions.clone()
                plus[a, c] += h
                minus[a, c] -= h
                with torch.no_grad():
                    delta = energy_of(potential, graph, plus) - energy_of(potential, graph, minus)
                numeric[a, c] = -float(delta[0]) / (2 * h)
        error = np.linalg.norm(forces - numeric) / max(np.linalg.norm(forces), 1e-12)
        assert error < 1e-6, f"relative force error {error:.2e}"

    def test_stress_is_finite_difference_strain_derivative(self, potential, structures):
        atoms = structures["periodic"]
        stress = evaluate(potential, atoms, stress=True)["stress"]
        volume = atoms.get_volume()
        numeric = np.zeros((3, 3))
        h = 1e-5
        for a in range(3):
            for b in range(3):
                strain = np.zeros((3, 3))
                strain[a, b] += 0.5 * h
                strain[b, a] += 0.5 * h
                energies = []
                for sign in (1, -1):
                    deformed = atoms.copy()
                    deformed.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
                    energies.append(evaluate(potential, deformed)["energy"])
                numeric[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
        error = np.abs(stress - numeric).max() / max(np.abs(stress).max(), 1e-12)
        assert error < 1e-6, f"relative stress error {error:.2e}"
        assert np.allclose(stress, stress.T, atol=1e-12 * np.abs(stress).max())

    def test_gradcheck_and_gradgradcheck(self, potential, structures):
        atoms = structures["cluster"][:4]
        graph = AtomicGraph.from_atoms(atoms, potential.cutoff + 0.5)
        positions = graph.positions.clone().requires_grad_(True)

        def forces(x):
            return potential(graph.with_positions(x), create_graph=True)[keys.FORCES]

        assert torch.autograd.gradcheck(lambda x: energy_of(potential, graph, x), (positions,))
        assert torch.autograd.gradgradcheck(forces, (positions,))

    # symmetries --------------------------------------------------------------
    @pytest.mark.parametrize("reflect", [False, True])
    def test_rotation_invariance_and_equivariance(self, potential, structures, reflect):
        rotation = random_rotation(seed=3, reflect=reflect)
        atoms = structures["periodic"]
        before = evaluate(potential, atoms, stress=True)
        after = evaluate(potential, rotated(atoms, rotation), stress=True)
        scale = np.abs(before["forces"]).max()
        assert after["energy"] == pytest.approx(before["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(after["forces"], before["forces"] @ rotation.T, atol=1e-10 * scale)
        np.testing.assert_allclose(after["stress"], rotation @ before["stress"] @ rotation.T,
                                   atol=1e-10 * np.abs(before["stress"]).max())
        mol = structures["cluster"]
        mol_before, mol_after = evaluate(potential, mol), evaluate(potential, rotated(mol, rotation))
        assert mol_after["energy"] == pytest.approx(mol_before["energy"], rel=1e-10)
        np.testing.assert_allclose(mol_after["forces"], mol_before["forces"] @ rotation.T,
                                   atol=1e-10 * np.abs(mol_before["forces"]).max())

    def test_rotation_equivariance_in_float32(self, structures):
        """Forces and stress rotate with the structure (reflections too) to 1e-5 of their size in float32."""
        torch.manual_seed(0)
        potential = self.make_potential().float().eval()
        rotation = random_rotation(seed=5, reflect=True)
        for atoms in structures.values():
            stress = bool(atoms.pbc.all())
            before = evaluate(potential, atoms, stress=stress)
            after = evaluate(potential, rotated(atoms, rotation), stress=stress)
            expected = before["forces"] @ rotation.T
            assert np.abs(after["forces"] - expected).max() <= 1e-5 * np.abs(expected).max()
            if stress:
                expected = rotation @ before["stress"] @ rotation.T
                assert np.abs(after["stress"] - expected).max() <= 1e-5 * np.abs(expected).max()

    @pytest.mark.parametrize("name", ["cluster", "periodic"])
    def test_translation_invariance(self, potential, structures, name):
        atoms = structures[name]
        moved = atoms.copy()
        moved.positions += np.array([1.3, -7.1, 2.9])
        before, after = evaluate(potential, atoms), evaluate(potential, moved)
        assert after["energy"] == pytest.approx(before["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(after["forces"], before["forces"], atol=1e-9 * np.abs(before["forces"]).max())

    @pytest.mark.parametrize("name", ["cluster", "periodic"])
    def test_permutation_equivariance(self, potential, structures, name):
        atoms = structures[name]
        order = np.random.default_rng(4).permutation(len(atoms))
        before, after = evaluate(potential, atoms), evaluate(potential, atoms[order])
        assert after["energy"] == pytest.approx(before["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(after["forces"], before["forces"][order], atol=1e-9 * np.abs(before["forces"]).max())

    # periodicity ---------------------------------------------------------------
    def test_wrapping_into_the_cell_changes_nothing(self, potential, structures):
        atoms = structures["periodic"]
        shifted = atoms.copy()
        shifted.positions += np.array([2, -1, 1]) @ atoms.cell.array * (np.arange(len(atoms)) % 2)[:, None]
        before, after = evaluate(potential, atoms, stress=True), evaluate(potential, shifted, stress=True)
        assert after["energy"] == pytest.approx(before["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(after["forces"], before["forces"], atol=1e-9 * np.abs(before["forces"]).max())
        np.testing.assert_allclose(after["stress"], before["stress"], atol=1e-9 * np.abs(before["stress"]).max())

    def test_supercell_doubles_energy(self, potential, structures):
        atoms = structures["periodic"]
        before, after = evaluate(potential, atoms, stress=True), evaluate(potential, atoms.repeat((2, 1, 1)), stress=True)
        assert after["energy"] == pytest.approx(2 * before["energy"], rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(after["forces"], np.tile(before["forces"], (2, 1)),
                                   atol=1e-9 * np.abs(before["forces"]).max())
        np.testing.assert_allclose(after["stress"], before["stress"], atol=1e-9 * np.abs(before["stress"]).max())

    @pytest.mark.parametrize("name", ["cluster", "periodic"])
    def test_half_and_full_neighbour_lists_agree(self, potential, structures, name):
        """A potential that asks for half lists (Potential.neighbor_request) gives the same on a full list,
        which it halves itself; the others refuse a half list rather than miscount pairs."""
        atoms = structures[name]
        request = potential.neighbor_request(skin=0.5)
        full = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                       replace(request, full=True))
        half = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                       replace(request, full=False))
        if request.full:
            with pytest.raises(ValueError, match="full neighbour list"):
                potential(half)
            return
        stress = bool(atoms.pbc.all())
        expected = potential(full, compute_stress=stress)
        got = potential(half, compute_stress=stress)
        names = [keys.ENERGY, keys.FORCES] + ([keys.STRESS] if stress else [])
        for key in names:
            scale = float(expected[key].abs().max())
            torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-12 * max(scale, 1.0), msg=key)

    # batching -------------------------------------------------------------------
    def test_batch_equals_single(self, potential, structures):
        frames = [structures["cluster"], structures["periodic"], structures["cluster"][:3]]
        graphs = [AtomicGraph.from_atoms(a, potential.cutoff) for a in frames]
        batch = potential(collate(graphs), compute_stress=True)
        start = 0
        for k, atoms in enumerate(frames):
            single = evaluate(potential, atoms, stress=bool(atoms.pbc.all()))
            n = len(atoms)
            assert float(batch[keys.ENERGY][k].detach()) == pytest.approx(single["energy"], rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(batch[keys.FORCES][start:start + n].detach().numpy(), single["forces"],
                                       atol=1e-10 * max(1.0, np.abs(single["forces"]).max()))
            if atoms.pbc.all():
                np.testing.assert_allclose(batch[keys.STRESS][k].detach().numpy(), single["stress"],
                                           atol=1e-10 * np.abs(single["stress"]).max())
            else:
                assert torch.isnan(batch[keys.STRESS][k]).all()
            start += n

    def test_no_gradient_across_structures(self, potential, structures):
        frames = [structures["cluster"], structures["periodic"]]
        batch = collate([AtomicGraph.from_atoms(a, potential.cutoff) for a in frames])
        positions = batch.positions.clone().requires_grad_(True)
        energy = potential(batch.with_positions(positions), compute_forces=False)[keys.ENERGY]
        (grad,) = torch.autograd.grad(energy[0], positions)
        n0 = len(frames[0])
        assert torch.all(grad[n0:] == 0)
        assert torch.any(grad[:n0] != 0)

    def test_locality_far_apart_structures_add_up(self, potential, structures):
        if not self.local:
            pytest.skip("long-range potential: far-apart fragments interact by design")
        a, b = structures["cluster"], structures["cluster"][:3]
        far = b.copy()
        far.positions += np.array([potential.cutoff + 4 * self.distance + 10.0, 0.0, 0.0])
        combined = a + far
        assert evaluate(potential, combined)["energy"] == pytest.approx(
            evaluate(potential, a)["energy"] + evaluate(potential, b)["energy"], rel=1e-10, abs=1e-10)

    def test_energy_continuous_at_cutoff(self, potential):
        elements = [int(z) for z in potential.elements]
        for zi in elements:
            for zj in elements:
                energies = []
                for r in (potential.cutoff - 1e-7, potential.cutoff + 1e-7):
                    dimer = Atoms(numbers=[zi, zj], positions=[[0, 0, 0], [r, 0, 0]])
                    energies.append(evaluate(potential, dimer)["energy"])
                assert abs(energies[0] - energies[1]) < 1e-6, f"jump at cutoff for Z={zi},{zj}"

    def test_lone_atom_energy_is_e0(self, potential):
        values = {int(z): -3.5 * (k + 1) - 0.123 for k, z in enumerate(potential.elements)}
        potential.e0.copy_(torch.tensor([values[int(z)] for z in potential.elements], dtype=torch.float64))
        for z, value in values.items():
            result = evaluate(potential, Atoms(numbers=[z], positions=[[0.1, 0.2, 0.3]]))
            assert result["energy"] == value
            assert np.all(result["forces"] == 0)

    # persistence and interfaces ---------------------------------------------
    def test_save_load_round_trip(self, potential, structures, tmp_path):
        path = tmp_path / "model.pt"
        save(potential, path)
        loaded = load(path)
        assert loaded.dtype == potential.dtype
        for atoms in structures.values():
            before, after = evaluate(potential, atoms), evaluate(loaded, atoms)
            assert after["energy"] == before["energy"]
            np.testing.assert_array_equal(after["forces"], before["forces"])

    def test_ase_calculator_matches_potential(self, potential, structures):
        atoms = structures["periodic"].copy()
        trainable = [p.requires_grad for p in potential.parameters()]
        assert all(trainable)
        atoms.calc = Calculator(potential, dtype="float64")
        assert not any(p.requires_grad for p in atoms.calc.potential.parameters())  # its own copy, frozen
        direct = evaluate(potential, atoms, stress=True)
        assert atoms.get_potential_energy() == pytest.approx(direct["energy"], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), direct["forces"], atol=1e-10 * np.abs(direct["forces"]).max())
        np.testing.assert_allclose(atoms.get_potential_energies(), direct["atomic_energies"], atol=1e-10)
        assert [p.requires_grad for p in potential.parameters()] == trainable  # the caller's model is untouched
        voigt = atoms.get_stress()
        s = direct["stress"]
        np.testing.assert_allclose(voigt, [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]],
                                   atol=1e-10 * np.abs(s).max())

    def test_trainer_steps_lower_the_loss(self, potential, structures):
        """nnip's Trainer, on data labelled by the same potential with parameters 10% off, lowers the loss."""
        if not self.trainable:
            assert list(potential.parameters()) == []
            return
        from nnip.data.dataset import AtomicDataset
        from nnip.training import Trainer, TrainingConfig
        from nnip.training.metrics import predict, prediction_loss

        reference = copy.deepcopy(potential)
        with torch.no_grad():
            for p in reference.parameters():
                p.mul_(1.1)
        frames = []
        for atoms in structures.values():
            labelled = atoms.copy()
            result = evaluate(reference, labelled)
            labelled.calc = SinglePointCalculator(labelled, energy=float(result["energy"]), forces=result["forces"])
            frames.append(labelled)
        dataset = AtomicDataset(frames, potential.neighbor_request())
        config = TrainingConfig(max_epochs=5, batch_size=len(frames), lr=self.trainer_lr, schedule="constant",
                                progress=False)
        before = prediction_loss(predict(potential, dataset), config.loss)
        trained = Trainer(copy.deepcopy(potential), dataset, None, config).fit()
        assert trained.epochs == 5
        assert trained.history[-1]["train_loss"] < before

    @pytest.mark.slow
    def test_nve_conserves_total_energy(self, potential, structures):
        atoms = structures["periodic"].copy()
        atoms.calc = Calculator(potential, dtype="float64")
        maxwell_boltzmann(atoms, 30.0, seed=5)
        dynamics = VelocityVerlet(atoms, timestep=self.nve_timestep * fs)
        totals, kinetic = [], []
        for _ in range(200):
            dynamics.run(1)
            totals.append(atoms.get_total_energy())
            kinetic.append(atoms.get_kinetic_energy())
        deviation = np.abs(np.asarray(totals) - totals[0]).max()
        assert deviation < 2e-3 * np.mean(kinetic), f"total energy moved {deviation:.2e} eV"
