"""Message passing across MPI ranks is exact: 1, 2 and 4 ranks give the same NVE trajectory of a 2-layer model,
and every sum over a half list (pair energies, messages), whose pairs with another rank's atom are computed on
one of the two ranks only, equals nnip.Calculator on 2 and 4 ranks, as do linear ACE on a full list and a potential
with both kinds of terms."""

import pytest

import numpy as np
import torch
from ase.build import bulk

from nnip.data.graph import AtomicGraph
from nnip.lammps.deploy import deploy
from nnip.potentials import build_potential
from nnip.potentials.contract.linear import get_coefficients, linear_terms, set_coefficients
from nnip.testing.lammps import evaluate, read_dump, run, setup, write_data

from lammps_cases import CONFIGS, ELEMENTS, make_model, reference, relative

SCRIPT = """neighbor 1.0 bin
velocity all create 600 4928459 loop geom
fix nve all nve
timestep 0.001
dump d all custom 200 trajectory.dump id xu yu zu fx fy fz
dump_modify d sort id format float %.17g
thermo 50
run 200
"""


def test_one_two_and_four_ranks_give_the_same_trajectory(lammps_plugin, tmp_path):
    package = tmp_path / "schnet.pt2"
    deploy(make_model("schnet"), package)  # 2 interaction layers: an atom's energy reaches 10 Å
    # 28.9 Å along x: the ranks' slabs are thinner than the 10 Å an energy reaches, so owned atoms near a
    # slab's face depend on atoms that another rank owns and that a one-cutoff ghost shell would miss
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((8, 4, 4))
    crystal.rattle(0.05, seed=7)
    frames = {}
    for ranks in (1, 2, 4):
        folder = tmp_path / f"ranks{ranks}"
        folder.mkdir()
        write_data(crystal, folder / "data.cu", ELEMENTS)
        output = run(setup(package, "data.cu", "H C O Cu") + SCRIPT, folder, ranks=ranks).stdout
        assert f"on {ranks} procs" in output
        frames[ranks] = read_dump(folder / "trajectory.dump")
    first, last = frames[1]
    assert [first["timestep"], last["timestep"]] == [0, 200]
    forces = np.stack([first["fx"], first["fy"], first["fz"]], axis=1)
    moved = np.linalg.norm(np.stack([last[c] - first[c] for c in ("xu", "yu", "zu")], axis=1), axis=1)
    assert moved.mean() > 0.05  # the atoms did move over 200 fs
    for ranks in (2, 4):
        start, end = frames[ranks]
        other = np.stack([start["fx"], start["fy"], start["fz"]], axis=1)
        assert np.abs(other - forces).max() <= 1e-10 * np.abs(forces).max()
        for c in ("xu", "yu", "zu"):
            assert np.abs(end[c] - last[c]).max() < 1e-6


#: models whose sums must be exact across ranks: half-list sums (pair energies, 2-layer equivariant messages),
#: full-list body-order-4 terms (linear ACE, the sparse GP), and half- and full-list terms in one potential (the
#: potential asks LAMMPS for a full list and halves it for the half-list terms on every rank)
ACROSS_RANKS = {"half lists": CONFIGS["classical"] + CONFIGS["equivariant"],
                "full list": CONFIGS["linear_ace"],
                "full list, sparse GP": CONFIGS["sparse_gp"],
                "half and full lists": CONFIGS["classical"][:2] + CONFIGS["schnet"] + CONFIGS["linear_ace"]}


@pytest.fixture(scope="module", params=list(ACROSS_RANKS))
def deployed_sum(request, tmp_path_factory):
    """One model of ACROSS_RANKS (data-dependent constants, such as the GP's sparse points, from a rattled copper
    crystal; linear coefficients drawn at random), and its package."""
    torch.manual_seed(0)
    model = build_potential({"elements": ELEMENTS, "terms": ACROSS_RANKS[request.param]}).double()
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    crystal.rattle(0.1, seed=1)
    model.fit_terms_to_data([AtomicGraph.from_atoms(crystal, model.neighbor_request(), dtype=torch.float64)])
    if linear_terms(model):
        set_coefficients(model, 0.01 * torch.randn(get_coefficients(model).shape, dtype=torch.float64))
    package = tmp_path_factory.mktemp("across_ranks") / "model.pt2"
    deploy(model, package)
    return model, package


@pytest.mark.parametrize("ranks", [2, 4])
def test_sums_across_ranks_equal_the_calculator(ranks, deployed_sum, lammps_plugin, tmp_path):
    model, package = deployed_sum
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 3, 3))  # slabs of 5.4 Å on 4 ranks
    crystal.rattle(0.05, seed=3)
    crystal.wrap()
    (lammps,) = evaluate(package, [crystal], ELEMENTS, tmp_path, ranks=ranks)
    expected = reference(model, crystal)
    for key in ("energy", "forces", "virial"):
        assert relative(lammps[key], expected[key]) < 1e-8, key
