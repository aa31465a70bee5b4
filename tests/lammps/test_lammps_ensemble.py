"""An ensemble in LAMMPS: mean forces, the per-atom force standard deviation of nnip.Calculator, and fix halt."""

from ase.build import bulk

from nnip.lammps.deploy import deploy
from nnip.testing.lammps import evaluate, printed, run, setup, write_data

from lammps_cases import ELEMENTS, make_ensemble, reference, relative, structures

HALT = """compute dev all nnip/deviation
compute worst all reduce max c_dev
variable worst equal c_worst
velocity all create 300 1234 loop geom
fix nve all nve
fix stop all halt 1 v_worst > {limit} error soft
run 50
print "LAST $(step) $(v_worst:%.17g)"
"""


def test_ensemble_deviation_equals_the_calculator_and_stops_a_run(lammps_plugin, tmp_path):
    ensemble = make_ensemble(scale=2.0)
    package = tmp_path / "ensemble.pt2"
    assert deploy(ensemble, package)[0]["members"] == "2"
    found = structures()
    chosen = [found["fcc"], found["molecule"]]
    for atoms, lammps in zip(chosen, evaluate(package, chosen, ELEMENTS, tmp_path, ranks=2, deviation=True)):
        expected = reference(ensemble, atoms)
        assert relative(lammps["forces"], expected["forces"]) < 1e-8
        assert relative(lammps["energy"], expected["energy"]) < 1e-8
        assert relative(lammps["force_std"], expected["force_std"]) < 1e-8
        assert expected["force_std"].min() > 0

    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    crystal.rattle(0.05, seed=3)
    limit = 0.5 * reference(ensemble, crystal)["force_std"].max()
    write_data(crystal, tmp_path / "data.cu", ELEMENTS)
    output = run(setup(package, "data.cu", "H C O Cu") + HALT.format(limit=limit), tmp_path, ranks=2).stdout
    assert "Fix halt condition for fix-id stop met on step 1" in output
    (step, worst), = printed(output, "LAST")
    assert step == 1 and worst > limit
