"""`nnip train` and `nnip evaluate` end to end: run folder, reports, errors, overwrite protection."""

import json
import math

import numpy as np
import pytest
import yaml
from ase.calculators.lj import LennardJones

import nnip
from nnip.cli import main
from nnip.potentials import Ensemble
from nnip.runlock import LOCK_NAME
from nnip.training.checkpoint import read_metrics_csv

from conftest import lj_config


def write_config(tmp_path, config, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_train_writes_the_run_folder(tmp_path, argon_file, capsys):
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run"))
    assert main(["train", str(config), "--set", "training.max_epochs=3"]) == 0
    run = tmp_path / "run"
    for name in ("config.yaml", "model.pt", "checkpoint.pt", "metrics.csv", "report.json",
                 "learning_curves.png", "parity_energy.png", "parity_forces.png"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["epochs"] == 3 and report["n_parameters"] == 2 and report["train_seconds"] > 0
    assert report["train"]["n_structures"] == 40 and report["val"]["n_structures"] == 10
    assert report["test"]["n_structures"] == 10
    assert report["statistics"]["e0"] == {"Ar": 0.0}
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["max_epochs"] == 3
    model = nnip.load(run / "model.pt")
    assert float(model.terms[0].sigma.values.detach()) != pytest.approx(3.0, abs=1e-6)  # it trained


def test_evaluate_json_matches_a_hand_computation(tmp_path, capsys):
    """Metrics of an LJ model on data labelled by a different LJ, computed here with ASE and numpy."""
    from nnip.testing.structures import argon_clusters

    frames = argon_clusters(3, 3.4, 0.0104, seed=5)
    frames[2].calc.results.pop("forces")  # a structure without forces contributes to energy metrics only
    data = tmp_path / "data.extxyz"
    nnip.write(data, frames)
    potential = nnip.potentials.build_potential(
        {"elements": [18], "terms": [{"name": "lj", "config": {"sigma": 3.3, "epsilon": 0.011, "cutoff": 8.0}}]})
    nnip.save(potential, tmp_path / "model.pt")
    assert main(["evaluate", str(tmp_path / "model.pt"), str(data), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)

    model = LennardJones(sigma=3.3, epsilon=0.011, rc=8.0, smooth=False)
    e_err, f_err = [], []
    for k, atoms in enumerate(nnip.read(data)):
        reference = atoms.calc.results
        probe = atoms.copy()
        probe.calc = model
        e_err.append(probe.get_potential_energy() - reference["energy"])
        if k < 2:
            f_err.append(probe.get_forces() - reference["forces"])
    e_err, f_err = np.array(e_err), np.concatenate(f_err)
    expected = {
        "n_structures": 3, "n_atoms": 39,
        "energy_mae": np.abs(e_err).mean(), "energy_rmse": np.sqrt((e_err**2).mean()),
        "energy_mae_per_atom": np.abs(e_err / 13).mean(), "energy_rmse_per_atom": np.sqrt(((e_err / 13) ** 2).mean()),
        "forces_mae": np.abs(f_err).mean(), "forces_rmse": np.sqrt((f_err**2).mean()),
        "forces_norm_mae": np.linalg.norm(f_err, axis=1).mean(),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got["stress_mae"] is None  # no stress labels: null, not NaN


@pytest.mark.parametrize("change, message", [
    (lambda c: c["training"].update(max_epoch=3), "training.max_epoch: unknown key (did you mean 'max_epochs'?)"),
    (lambda c: c["training"].update(lr="fast"), "training.lr: expected float, got 'fast'"),
    (lambda c: c["model"].update(sigm=3.0), "model.sigm: unknown key (did you mean 'sigma'?)"),
    (lambda c: c["model"].update(name="lennardjones"), "unknown potential 'lennardjones'"),
    (lambda c: c.update(seeds=1), "unknown key 'seeds' (did you mean 'seed'?)"),
    (lambda c: c["data"].update(train="missing.extxyz"), "missing.extxyz"),
])
def test_bad_config_exits_2_with_one_line(tmp_path, argon_file, capsys, change, message):
    config = lj_config(argon_file, tmp_path / "run")
    change(config)
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_data_without_forces_but_force_weight_is_an_error(tmp_path, capsys):
    from nnip.testing.structures import argon_clusters

    frames = argon_clusters(30, 3.4, 0.0104)
    for atoms in frames:
        atoms.calc.results.pop("forces")
    data = tmp_path / "energies_only.extxyz"
    nnip.write(data, frames)
    config = lj_config(data, tmp_path / "run")
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    line = one_error_line(capsys)
    assert "no structure has forces" in line and "forces_weight" in line and "energies_only.extxyz" in line
    config["training"]["loss"]["forces_weight"] = 0.0  # energies alone are fine
    assert main(["train", str(write_config(tmp_path, config)), "--set", "training.max_epochs=1"]) == 0


def test_element_missing_from_training_data_is_an_error(tmp_path, argon_file, capsys):
    from nnip.testing.structures import argon_clusters

    frames = argon_clusters(3, 3.4, 0.0104)
    frames[1].numbers[4] = 36  # krypton
    val = tmp_path / "val.extxyz"
    nnip.write(val, frames)
    config = lj_config(argon_file, tmp_path / "run")
    config["data"]["val"] = str(val)
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    line = one_error_line(capsys)
    assert "val.extxyz: frame 1: element(s) Kr not in the training data (Ar)" in line


def test_existing_run_is_not_overwritten_without_overwrite(tmp_path, argon_file, capsys):
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run", max_epochs=1))
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    (run / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK_NAME}
    assert main(["train", str(config)]) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK_NAME} == before
    assert main(["train", str(config), "--overwrite", "--set", "training.max_epochs=2"]) == 0
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    assert len(read_metrics_csv(run / "metrics.csv")) == 2


def test_max_time_stops_cleanly_and_still_writes_model_and_report(tmp_path, argon_file):
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run", max_epochs=100000, max_time=2.0))
    assert main(["train", str(config)]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["stopped"] == "max_time"
    assert 0 < report["epochs"] < 100000 and report["train_seconds"] < 10
    assert math.isfinite(report["test"]["forces_mae"])
    nnip.load(tmp_path / "run" / "model.pt")


def test_ensemble_and_kfold_runs(tmp_path, argon_file, capsys):
    config = lj_config(argon_file, tmp_path / "ens", max_epochs=2)
    config.update(ensemble=3, bootstrap=True)
    assert main(["train", str(write_config(tmp_path, config))]) == 0
    ensemble = nnip.load(tmp_path / "ens" / "model.pt")
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 3
    sigmas = [float(m.terms[0].sigma.values.detach()) for m in ensemble.members]
    assert len(set(sigmas)) == 3  # bootstrap: members differ
    report = json.loads((tmp_path / "ens" / "report.json").read_text())
    assert report["test"]["forces_std_mean"] > 0 and len(report["members"]) == 3
    # the spread is calibrated on the validation set and stored in the model file
    assert report["variance_scale"] > 0 and report["variance_scale"] != 1.0
    assert float(ensemble.variance_scale) == pytest.approx(report["variance_scale"])
    assert {"forces_nll", "forces_miscalibration_area"} <= set(report["test"])
    assert (tmp_path / "ens" / "calibration.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "ens" / "model.pt"), str(argon_file), "--json"]) == 0
    assert {"forces_std_mean", "uncertainty_spearman"} <= set(json.loads(capsys.readouterr().out))

    config = lj_config(argon_file, tmp_path / "kf", max_epochs=2)
    config.update(kfold=3)
    config["data"]["split"] = {"val": 5, "test": 0}
    assert main(["train", str(write_config(tmp_path, config, "kfold.yaml"))]) == 0
    report = json.loads((tmp_path / "kf" / "report.json").read_text())
    assert len(report["folds"]) == 3
    assert sum(f["n_structures"] for f in report["folds"]) == 60  # every structure tested exactly once
    maes = [f["forces_mae"] for f in report["folds"]]
    assert report["test_mean"]["forces_mae"] == pytest.approx(np.mean(maes))
    assert report["test_std"]["forces_mae"] == pytest.approx(np.std(maes, ddof=1))


def test_evaluate_on_data_with_an_unknown_element_names_file_and_frame(tmp_path, argon_file, capsys):
    from nnip.testing.structures import argon_clusters

    frames = argon_clusters(2, 3.4, 0.0104)
    frames[1].numbers[0] = 10
    data = tmp_path / "neon.extxyz"
    nnip.write(data, frames)
    potential = nnip.potentials.build_potential({"elements": [18], "terms": [{"name": "lj", "config": {}}]})
    nnip.save(potential, tmp_path / "model.pt")
    assert main(["evaluate", str(tmp_path / "model.pt"), str(data)]) == 2
    assert "neon.extxyz: frame 1: element(s) Ne not in the model (Ar)" in one_error_line(capsys)


def test_tensorboard_logs_or_a_clear_error_before_the_run_starts(tmp_path, argon_file, capsys):
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run", max_epochs=1, tensorboard=True))
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        assert main(["train", str(config)]) == 2
        assert "install the tensorboard package" in one_error_line(capsys)
        assert not (tmp_path / "run").exists()
    else:
        assert main(["train", str(config)]) == 0
        assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_forces_in_kcal_mol_read_as_ev_are_refused_until_the_unit_is_stated(tmp_path, capsys):
    frames = nnip.read(nnip.data.bundled("ethanol_train.extxyz"), index=":30")
    kcal = tmp_path / "ethanol_kcal.extxyz"
    nnip.write(kcal, [_scaled(a, 23.0605) for a in frames])  # the same data in kcal/mol, unit not stated
    config = {"output": str(tmp_path / "run"), "data": {"train": str(kcal), "split": {"val": 5}},
              "model": {"name": "schnet", "features": 8, "interactions": 1}, "training": {"max_epochs": 1}}
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"nnip train: error: {kcal}: forces have an RMS of 26.9 eV/Å, implausible for eV/Å")
    assert "set data.energy_unit" in line and not (tmp_path / "run").exists()
    assert main(["info", str(kcal)]) == 0
    assert "units:         forces have an RMS of 26.9 eV/Å" in capsys.readouterr().out
    config["data"]["energy_unit"] = "kcal/mol"  # stated: converted, trains
    assert main(["train", str(write_config(tmp_path, config)), "--set", "training.progress=false"]) == 0
    assert main(["info", str(kcal), "--energy-unit", "kcal/mol"]) == 0
    assert "units:" not in capsys.readouterr().out


def _scaled(atoms, factor):
    from ase.calculators.singlepoint import SinglePointCalculator

    copy = atoms.copy()
    copy.calc = SinglePointCalculator(copy, energy=factor * atoms.get_potential_energy(),
                                      forces=factor * atoms.get_forces())
    return copy


def test_nnip_train_takes_a_mapping_or_a_yaml_path_with_overrides(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "from_dict", max_epochs=1, plots=False)
    assert nnip.train(config)["epochs"] == 1
    path = write_config(tmp_path, lj_config(argon_file, tmp_path / "from_yaml", max_epochs=1, plots=False))
    report = nnip.train(path, ["training.max_epochs=2"])
    assert report["epochs"] == 2 and (tmp_path / "from_yaml" / "model.pt").is_file()
