"""Adversarial attacks: exact gradients, log-space Boltzmann weight, clamp, projection, distance guard, neighbours."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

import nnip
from nnip.active import adversarial
from nnip.active.adversarial import Attack, AttackSettings, log_partition, rigid_basis
from nnip.data.graph import AtomicGraph
from nnip.potentials import Ensemble, build_potential


def lj_ensemble(elements=("C", "H", "O"), sigmas=(1.0, 1.1, 1.2), epsilons=(0.01, 0.012, 0.009), cutoff=3.0):
    members = [build_potential({"elements": list(elements), "terms": [
        {"name": "lj", "config": {"sigma": s, "epsilon": e, "cutoff": cutoff, "switch_on": cutoff - 0.5}}]}).double()
        for s, e in zip(sigmas, epsilons)]
    return Ensemble(members).double()


def ethanol():
    return nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=0)[0]


def attack_for(ensemble, frames, **settings):
    energies = [a.get_potential_energy() for a in frames]
    return Attack(ensemble, energies, [len(a) for a in frames], AttackSettings(**settings))


def test_objective_gradient_passes_finite_differences():
    frames = nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=slice(0, 5))
    attack = attack_for(lj_ensemble(), frames, kT=0.5)
    graph = AtomicGraph.from_atoms(frames[0], 3.0)
    log_q = attack.log_q(False)

    def log_objective(positions):
        return attack.objective(graph, positions, False, log_q)["log_objective"]

    positions = graph.positions.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(log_objective, (positions,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_log_space_boltzmann_weight_equals_the_naive_formula_and_survives_extremes():
    rng = np.random.default_rng(0)
    train = rng.normal(-2.0, 0.3, 50)
    kT, energy = 0.4, -1.7
    naive = math.exp(-energy / kT) / np.mean(np.exp(-train / kT))
    assert -energy / kT - log_partition(train, kT) == pytest.approx(math.log(naive), rel=1e-12)
    huge = train * 1000  # exp(5000): the naive formula overflows, log space does not
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.mean(np.exp(-huge / kT)))
    assert math.isfinite(log_partition(huge, kT))
    assert log_partition(huge, kT) == pytest.approx(-huge.min() / kT + math.log(np.mean(np.exp(-(huge - huge.min()) / kT))))


def test_delta_is_clamped():
    seed = ethanol()
    attack = attack_for(lj_ensemble(), [seed], kT=100.0, lr=1.0, steps=8, clamp=0.15, min_distance=0.0,
                        project_rigid=False)
    (result,) = attack.run([seed])
    delta = result.atoms.positions - seed.positions
    assert np.abs(delta).max() == pytest.approx(0.15, abs=1e-12)  # reached, never exceeded


def test_rigid_translation_and_rotation_are_projected_out():
    seed = ethanol()
    attack = attack_for(lj_ensemble(), [seed], kT=100.0, lr=0.05, steps=20, min_distance=0.0)
    (result,) = attack.run([seed])
    delta = torch.as_tensor(result.atoms.positions - seed.positions)
    assert delta.abs().max() > 0.05  # it moved
    basis = rigid_basis(torch.as_tensor(seed.positions), periodic=False)
    assert basis.shape == (27, 6)
    np.testing.assert_allclose((basis.T @ delta.reshape(-1)).numpy(), 0.0, atol=1e-10)
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)  # periodic: translations only
    assert rigid_basis(torch.as_tensor(crystal.positions), periodic=True).shape == (12, 3)


def test_distance_guard_stops_a_seed_before_atoms_overlap():
    ensemble = lj_ensemble(elements=("H",), sigmas=(0.9, 0.9), epsilons=(0.01, 0.03), cutoff=3.0)
    dimer = Atoms("H2", positions=[[0, 0, 0], [0.95, 0, 0]])  # inside the well: |F| grows as r shrinks
    attack = Attack(ensemble, [0.0], [2], AttackSettings(kT=1000.0, lr=0.05, steps=200, min_distance=0.7))
    (result,) = attack.run([dimer])
    distance = result.atoms.get_distance(0, 1)
    assert result.stopped == "distance"
    # pulled together by the growing disagreement (unguarded it settles at 0.384 Å), stopped at the guard
    assert 0.7 * 2 * 0.31 <= distance < 0.5


def test_neighbour_list_is_rebuilt_so_the_skin_changes_nothing(monkeypatch):
    seed = ethanol()
    builds = []
    collate = adversarial.collate
    monkeypatch.setattr(adversarial, "collate", lambda graphs: builds.append(1) or collate(graphs))
    common = dict(kT=100.0, lr=0.1, steps=25, min_distance=0.0, clamp=3.0)
    (skin,) = attack_for(lj_ensemble(cutoff=2.5), [seed], skin=0.3, **common).run([seed])
    rebuilds = len(builds)
    (every_step,) = attack_for(lj_ensemble(cutoff=2.5), [seed], skin=0.0, **common).run([seed])
    assert 2 < rebuilds < len(builds)  # the skin list was rebuilt as atoms moved, but not at every step
    assert np.abs(skin.atoms.positions - seed.positions).max() > 0.5  # pairs crossed the 2.5 Å cutoff
    np.testing.assert_allclose(skin.atoms.positions, every_step.atoms.positions, atol=1e-9)


def test_seeds_attacked_as_one_batch_equal_attacks_one_by_one():
    frames = nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=slice(0, 3))
    common = dict(kT=1.0, lr=0.02, steps=10, keep_trajectory=True)
    together = attack_for(lj_ensemble(), frames, seed=7, **common).run(frames)
    for k, frame in enumerate(frames):
        (alone,) = attack_for(lj_ensemble(), frames, seed=7 + k, **common).run([frame])
        np.testing.assert_allclose(together[k].atoms.positions, alone.atoms.positions, atol=1e-10)
        assert together[k].log_objective == pytest.approx(alone.log_objective, rel=1e-10)
        assert together[k].trajectory.shape == (11, 9, 3)
    assert together[0].atoms.info["attack_sigma"] == pytest.approx(together[0].sigma)


def test_attack_command_writes_attacked_geometries_and_trajectories(tmp_path, capsys):
    from nnip.cli import main

    nnip.save(lj_ensemble(), tmp_path / "ensemble.pt")
    seeds = tmp_path / "seeds.extxyz"
    nnip.write(seeds, nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=slice(0, 3)))
    assert main(["attack", str(tmp_path / "ensemble.pt"), str(seeds), "--steps", "5", "--kT-kcal-mol", "20",
                 "--output", str(tmp_path / "attacked.extxyz"), "--trajectory", str(tmp_path / "path.extxyz")]) == 0
    assert "Boltzmann weight from" in capsys.readouterr().out
    attacked = nnip.read(tmp_path / "attacked.extxyz")
    assert len(attacked) == 3 and all(a.info["attack_sigma"] > 0 for a in attacked)
    assert len(nnip.read(tmp_path / "path.extxyz")) == 3 * 6
    nnip.save(lj_ensemble().members[0], tmp_path / "single.pt")
    assert main(["attack", str(tmp_path / "single.pt"), str(seeds)]) == 2
    assert "an attack needs an ensemble" in capsys.readouterr().err


def test_ase_constraints_are_honoured_for_a_particle_on_a_surface():
    from ase.constraints import FixCartesian

    members = [build_potential({"elements": ["H"], "terms": [
        {"name": "coordinate_mlp", "config": {"n_atoms": 1, "hidden": [16]}}]}).double() for _ in range(3)]
    particle = Atoms("H", positions=[[-0.9, 0.1, 0.0]])
    particle.set_constraint(FixCartesian(0, mask=(False, False, True)))  # moves in x and y only
    (result,) = Attack(Ensemble(members), [0.0], [1], AttackSettings(kT=10.0, lr=0.05, steps=10)).run([particle])
    moved = result.atoms.positions[0] - particle.positions[0]
    assert abs(moved[2]) == 0.0 and np.abs(moved[:2]).min() > 1e-3


def test_identical_members_give_a_finite_objective_and_no_motion_blowup():
    seed = ethanol()
    member = lj_ensemble().members[0]
    (result,) = attack_for(Ensemble([member, member]), [seed], kT=1.0, steps=5).run([seed])
    assert np.isfinite(result.atoms.positions).all() and np.isfinite(result.log_objective)
    assert result.sigma == 0.0


def copper_ensemble():
    return lj_ensemble(elements=("Cu",), sigmas=(2.30, 2.33, 2.36), epsilons=(0.40, 0.42, 0.38), cutoff=5.0)


def test_objective_gradient_in_the_cell_passes_finite_differences():
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=1)
    attack = Attack(copper_ensemble(), [-14.0, -13.5, -13.8], [4, 4, 4], AttackSettings(kT=0.5, strain=True))
    graph = AtomicGraph.from_atoms(crystal, 5.5)
    log_q = attack.log_q(False)

    def log_objective(cell):
        return attack.objective(graph, graph.positions, False, log_q, cells=cell)["log_objective"]

    assert torch.autograd.gradcheck(log_objective, (graph.cell.clone().requires_grad_(True),), eps=1e-6, atol=1e-6,
                                    rtol=1e-5)


def test_strain_attack_deforms_only_periodic_cells_within_the_clamp_and_raises_the_objective():
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=2)
    cluster = bulk("Cu", "fcc", a=3.6, cubic=True)
    cluster.pbc = False
    cluster.cell = np.zeros((3, 3))
    seeds = [crystal, cluster]
    settings = dict(kT=2.0, steps=30, lr=0.01, strain=True, strain_lr=0.005, max_strain=0.02)
    attack = Attack(copper_ensemble(), [-14.0, -13.5], [4, 4], AttackSettings(**settings))
    attacked = attack.run(seeds)
    start = Attack(copper_ensemble(), [-14.0, -13.5], [4, 4], AttackSettings(**{**settings, "steps": 0})).run(seeds)
    deformation = np.linalg.solve(crystal.cell.array, attacked[0].atoms.cell.array)  # = I + eps
    strain = deformation - np.eye(3)
    assert np.abs(strain).max() > 1e-3  # the cell did move
    assert np.abs(strain).max() <= 0.02 + 1e-12 and np.allclose(strain, strain.T, atol=1e-12)
    np.testing.assert_allclose(attacked[1].atoms.cell.array, 0.0)
    assert attacked[0].log_objective > start[0].log_objective
    plain = Attack(copper_ensemble(), [-14.0, -13.5], [4, 4], AttackSettings(**{**settings, "strain": False})).run(seeds)
    np.testing.assert_allclose(plain[0].atoms.cell.array, crystal.cell.array)


def test_a_seed_whose_objective_turns_non_finite_stops_at_its_last_finite_geometry(monkeypatch):
    """The other seeds go on; the stopped one keeps the geometry of its last finite step."""
    ensemble = lj_ensemble(elements=("H",), sigmas=(0.9, 0.9), epsilons=(0.01, 0.03), cutoff=3.0)
    dimers = [Atoms("H2", positions=[[0, 0, 0], [1.2 + 0.1 * k, 0, 0]]) for k in range(2)]
    attack = Attack(ensemble, [0.0], [2], AttackSettings(kT=1000.0, lr=0.01, steps=6))
    objective, calls, geometries = attack.objective, [], []

    def failing(graph, positions, *args, **kwargs):
        values = objective(graph, positions, *args, **kwargs)
        calls.append(1)
        geometries.append(positions.detach().clone())
        if len(calls) == 4:  # the 4th step: seed 1's objective is NaN
            values = {k: v.clone() for k, v in values.items()}
            values["log_objective"] = torch.where(torch.tensor([False, True]), torch.nan, values["log_objective"])
        return values

    monkeypatch.setattr(attack, "objective", failing)
    first, second = attack.run(dimers)
    assert first.stopped == "steps" and second.stopped == "not finite"
    assert np.isfinite(second.atoms.positions).all()
    np.testing.assert_allclose(second.atoms.positions, geometries[3][2:].numpy(), atol=1e-12)  # where it was
