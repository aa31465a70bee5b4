"""nnip deploy lammps end to end with a classical sum (LJ, Morse, Buckingham, ZBL and fixed-charge Coulomb, three
cutoffs), and one clear line for bad input."""

import json
import zipfile

import pytest
from ase.build import bulk

import nnip
from nnip.cli import main
from nnip.lammps.deploy import FORMAT_VERSION
from nnip.potentials import build_potential
from nnip.testing.lammps import evaluate, run, setup, write_data

from lammps_cases import ELEMENTS, make_model, reference, relative, structures

pytestmark = pytest.mark.xdist_group("lammps-classical")  # one worker compiles the package



@pytest.fixture(scope="module")
def deployed(tmp_path_factory, lammps_plugin):
    """The classical sum, saved and deployed by the command line."""
    folder = tmp_path_factory.mktemp("classical")
    model = make_model("classical")
    nnip.save(model, folder / "classical.pt")
    assert main(["deploy", "lammps", str(folder / "classical.pt"), "--output", str(folder / "deployed")]) == 0
    return model, folder / "deployed" / "classical.pt2"


def test_deploy_command_writes_a_package_that_equals_the_calculator(deployed, tmp_path, capsys):
    model, package = deployed
    found = structures()
    for (label, atoms), lammps in zip(found.items(), evaluate(package, list(found.values()), ELEMENTS, tmp_path)):
        expected = reference(model, atoms)
        for key in ("energy", "forces", "virial"):
            assert relative(lammps[key], expected[key]) < 1e-8, (label, key)
    assert main(["deploy", "lammps", str(package.parent.parent / "classical.pt"), "--output",
                 str(package.parent)]) == 2
    assert "exists; use --overwrite" in capsys.readouterr().err


def _error_lines(package, coeff, folder):
    write_data(bulk("Cu", "fcc", a=3.61, cubic=True), folder / "data.cu", [1, 6, 8, 29])
    model, _, symbols = coeff.format(package=package).partition(" ")
    done = run(setup(model, "data.cu", symbols) + "run 0\n", folder, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output and "signal" not in output.lower()
    return [line for line in output.splitlines() if line.startswith("ERROR")]


@pytest.mark.parametrize("coeff, message", [
    ("{package}.missing H C O Cu", "cannot read model file"),
    ("{package} H C O Fe", "element Fe (atom type 4) is not known to the model"),
    ("{package} H C O", "expected 4 element name(s) after the model file (one per atom type), got 3"),
    ("{package} H C O Xq", "'Xq' (atom type 4) is not an element symbol"),
])
def test_bad_pair_coeff_is_one_clear_line(deployed, tmp_path, coeff, message):
    lines = _error_lines(deployed[1], coeff, tmp_path)
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize(("version", "advice"), [(99, "update nnip and rebuild the plugin"),
                                                  (FORMAT_VERSION - 1, "deploy the model again")])
def test_a_package_of_another_format_is_refused(deployed, tmp_path, version, advice):
    other = tmp_path / "other.pt2"
    with zipfile.ZipFile(deployed[1]) as source, zipfile.ZipFile(other, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("_metadata.json"):
                metadata = json.loads(data)
                metadata["format_version"] = str(version)
                data = json.dumps(metadata).encode()
            target.writestr(item, data)
    lines = _error_lines(other, "{package} H C O Cu", tmp_path)
    expected = f"package format {version}; this plugin reads format {FORMAT_VERSION}: {advice}"
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_global_term_is_refused_at_deploy_time(tmp_path, capsys):
    term = {"name": "electrostatics", "config": {"cutoff": 4.0, "features": 8, "interactions": 1, "basis": 8}}
    nnip.save(build_potential({"elements": [1, 8], "terms": [term]}), tmp_path / "charged.pt")
    assert main(["deploy", "lammps", str(tmp_path / "charged.pt"), "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "term 'electrostatics' is global" in error
