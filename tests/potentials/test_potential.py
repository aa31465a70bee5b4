"""Potential-level behaviour beyond the contract: elements, E0, scale/shift, config errors."""

import pytest
import torch
from ase import Atoms

from nnip.errors import ConfigError, DataError
from nnip.potentials import REGISTRY, LennardJones, LennardJonesConfig, Potential, build_term
from nnip.testing.structures import evaluate


def test_element_unknown_to_the_potential_is_a_data_error():
    potential = Potential([LennardJones(LennardJonesConfig(), ["Ar"])], ["Ar"])
    with pytest.raises(DataError, match=r"element\(s\) Kr not known to this potential \(it has Ar\)"):
        evaluate(potential, Atoms("ArKr", positions=[[0, 0, 0], [4, 0, 0]]))


def test_shift_is_per_atom_and_scale_leaves_ev_terms_alone():
    term = LennardJones(LennardJonesConfig(cutoff=6.0), ["Ar"])
    plain = Potential([term], ["Ar"])
    shifted = Potential([term], ["Ar"], e0={"Ar": -1.0}, shift=0.5, scale=3.0)
    atoms = Atoms("Ar3", positions=[[0, 0, 0], [3.8, 0, 0], [0, 3.9, 0]])
    assert evaluate(shifted, atoms)["energy"] == pytest.approx(evaluate(plain, atoms)["energy"] + 3 * (-1.0 + 0.5))


def test_build_term_rejects_unknown_names_keys_and_types():
    with pytest.raises(ConfigError, match=r"unknown potential 'morze' \(did you mean 'morse'"):
        build_term("morze", {}, [18])
    with pytest.raises(ConfigError, match=r"model.sigmaa: unknown key \(did you mean 'sigma'\?\)"):
        build_term("lj", {"sigmaa": 3.0}, [18], where="model")
    with pytest.raises(ConfigError, match=r"model.cutoff: expected float, got 'far'"):
        build_term("lj", {"cutoff": "far"}, [18], where="model")
    with pytest.raises(ConfigError, match=r"switch_on must lie in"):
        build_term("lj", {"cutoff": 5.0, "switch_on": 6.0}, [18], where="model")
    with pytest.raises(ConfigError, match=r"sigma has no value for element Kr"):
        build_term("lj", {"sigma": {"Ar": 3.4}}, [18, 36])


def test_every_registered_term_builds_from_defaults_and_round_trips_its_spec():
    for name, (config_class, term_class) in REGISTRY.items():
        term = build_term(name, {}, [1, 8])
        assert isinstance(term, term_class) and term.name == name
        rebuilt = build_term(name, term.spec()["config"], [1, 8])
        assert rebuilt.spec() == term.spec()


def test_forces_flow_back_to_displacements_for_attacks():
    from nnip.data import AtomicGraph

    potential = Potential([LennardJones(LennardJonesConfig(cutoff=6.0), ["Ar"])], ["Ar"])
    graph = AtomicGraph.from_atoms(Atoms("Ar3", positions=[[0, 0, 0], [3.7, 0, 0], [0, 3.9, 0.2]]), 6.5)
    delta = torch.zeros_like(graph.positions, requires_grad=True)
    out = potential(graph.with_positions(graph.positions + delta), create_graph=True)
    (out["forces"] ** 2).sum().backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0
