"""Trainer options end to end: resume after max_time, early stopping, freeze, weights, E0 choices, elements."""

import json

import numpy as np
import pytest
import torch
import yaml

import nnip
from nnip.cli import main
from nnip.testing.structures import argon_clusters
from nnip.training.checkpoint import load_checkpoint, read_metrics_csv

from conftest import lj_config


def run(tmp_path, config, *extra, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return main(["train", str(path), *extra])


def report_of(path):
    return json.loads((path / "report.json").read_text())


def test_resume_continues_a_run_stopped_by_max_time_or_given_more_epochs(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "run", max_epochs=3)
    assert run(tmp_path, config) == 0 and report_of(tmp_path / "run")["epochs"] == 3
    config["training"]["max_epochs"] = 5  # more epochs: --resume continues from the checkpoint
    assert run(tmp_path, config, "--resume") == 0
    assert report_of(tmp_path / "run")["epochs"] == 5
    assert [r["epoch"] for r in read_metrics_csv(tmp_path / "run" / "metrics.csv")] == [1, 2, 3, 4, 5]
    assert run(tmp_path, config, "--resume") == 0 and report_of(tmp_path / "run")["epochs"] == 5  # finished

    timed = lj_config(argon_file, tmp_path / "timed", max_epochs=100000, max_time=0.5)
    assert run(tmp_path, timed) == 0
    first = report_of(tmp_path / "timed")
    assert first["stopped"] == "max_time"
    timed["training"]["max_time"] = 1.5
    assert run(tmp_path, timed, "--resume") == 0
    assert report_of(tmp_path / "timed")["epochs"] > first["epochs"]


def test_no_finished_epoch_keeps_the_initial_weights(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "run", max_epochs=10, max_time=1e-9)
    assert run(tmp_path, config) == 0
    assert report_of(tmp_path / "run")["epochs"] == 0
    lj = nnip.load(tmp_path / "run" / "model.pt").terms[0]
    assert float(lj.sigma.values.detach()) == pytest.approx(3.0, rel=1e-12)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "run", max_epochs=60, optimizer="lbfgs", lr=1.0,
                       schedule="constant", early_stopping_patience=3, batch_size=40)
    assert run(tmp_path, config) == 0
    report = report_of(tmp_path / "run")
    rows = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert report["stopped"] == "early_stopping" and len(rows) < 60
    best = min(r["val_loss"] for r in rows)
    assert all(r["val_loss"] >= best for r in rows[-3:])  # the last 3 epochs did not improve
    assert rows[-4]["val_loss"] == best or len(rows) == 3


def test_freeze_keeps_parameters_fixed_and_unknown_patterns_are_errors(tmp_path, argon_file, capsys):
    config = lj_config(argon_file, tmp_path / "run", freeze=["terms.0.sigma.*"])
    assert run(tmp_path, config) == 0
    lj = nnip.load(tmp_path / "run" / "model.pt").terms[0]
    assert float(lj.sigma.values.detach()) == 3.0 and float(lj.epsilon.values.detach()) != 0.012
    config = lj_config(argon_file, tmp_path / "bad", freeze=["terms.0.sigmaa"])
    assert run(tmp_path, config) == 2
    assert "training.freeze: 'terms.0.sigmaa' matches no parameter" in capsys.readouterr().err


def test_a_bad_weight_names_file_and_frame(tmp_path, capsys):
    frames = argon_clusters(20, 3.4, 0.0104)
    frames[6].info["weight"] = "high"
    data = tmp_path / "weighted.extxyz"
    nnip.write(data, frames)
    config = lj_config(data, tmp_path / "run")
    config["data"]["split"] = {"val": 0, "test": 0}
    assert run(tmp_path, config) == 2
    assert "weighted.extxyz: frame" in capsys.readouterr().err


def test_trained_e0_is_averaged_by_ema_and_saved(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "run", train_e0=True, ema_decay=0.9, max_epochs=2)
    config["model"]["e0"] = {"Ar": 0.05}
    assert run(tmp_path, config) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert "e0" in state["ema"]["shadow"]
    model = nnip.load(tmp_path / "run" / "model.pt")
    assert float(model.e0[0]) != 0.05
    assert float(model.e0[0]) == pytest.approx(float(state["best_model"]["e0"][0]))


def test_ensemble_members_share_the_elements_of_the_whole_training_set(tmp_path):
    frames = argon_clusters(24, 3.4, 0.0104)
    frames[7].numbers[3] = 36  # one krypton atom in one structure: bootstrap samples may miss it
    data = tmp_path / "arkr.extxyz"
    nnip.write(data, frames)
    config = lj_config(data, tmp_path / "run", max_epochs=1)
    config["data"]["split"] = {"val": 0, "test": 0}
    config.update(ensemble=4, bootstrap=True)
    assert run(tmp_path, config) == 0
    ensemble = nnip.load(tmp_path / "run" / "model.pt")
    assert all(m.elements.tolist() == [18, 36] for m in ensemble.members)


def test_isolated_atom_e0_for_a_network_and_a_lone_atom_returns_it(tmp_path):
    from ase import Atoms

    from nnip.data import bundled
    from nnip.testing.structures import evaluate

    config = {
        "output": str(tmp_path / "run"),
        "data": {"train": str(bundled("ethanol_test.extxyz")), "split": {"val": 10},
                 "isolated_atoms": str(bundled("ethanol_isolated_atoms.extxyz"))},
        "model": {"name": "schnet", "features": 8, "interactions": 1, "basis": 8, "e0": "isolated"},
        "training": {"max_epochs": 1, "progress": False},
    }
    assert run(tmp_path, config) == 0
    report = report_of(tmp_path / "run")
    isolated = {a.get_chemical_symbols()[0]: a.get_potential_energy()
                for a in nnip.read(bundled("ethanol_isolated_atoms.extxyz"))}
    assert report["statistics"]["e0_method"] == "isolated_atoms"
    assert report["statistics"]["e0"] == pytest.approx({s: isolated[s] for s in ("H", "C", "O")})
    model = nnip.load(tmp_path / "run" / "model.pt")
    assert float(model.shift) == 0.0
    for symbol, energy in isolated.items():
        if symbol in ("H", "C", "O"):
            assert evaluate(model.double(), Atoms(symbol))["energy"] == pytest.approx(energy, abs=1e-9)


def test_model_init_starts_from_a_saved_model_or_ensemble_member(tmp_path, argon_file, capsys):
    first = lj_config(argon_file, tmp_path / "first", max_epochs=30, lr=0.05)
    first["ensemble"] = 2
    assert run(tmp_path, first, name="first.yaml") == 0
    trained = nnip.load(tmp_path / "first" / "model.pt")
    second = lj_config(argon_file, tmp_path / "second", max_epochs=10, max_time=1e-9)  # no step: weights as loaded
    second["ensemble"] = 2
    second["model"]["init"] = str(tmp_path / "first" / "model.pt")
    assert run(tmp_path, second, name="second.yaml") == 0
    started = nnip.load(tmp_path / "second" / "model.pt")
    for m in range(2):
        sigma = float(started.members[m].terms[0].sigma.values.detach())
        assert sigma == pytest.approx(float(trained.members[m].terms[0].sigma.values.detach()), rel=1e-12)
        assert sigma != pytest.approx(3.0, rel=1e-3)  # the trained value, not the config's start
    wrong = lj_config(argon_file, tmp_path / "wrong", max_epochs=1)
    wrong["model"] = {"name": "morse", "cutoff": 8.0, "e0": "zero", "init": str(tmp_path / "first" / "model.pt")}
    assert run(tmp_path, wrong, name="wrong.yaml") == 2
    assert "model.init:" in capsys.readouterr().err


def test_keep_last_ends_with_the_final_weights_and_best_with_the_lowest_validation_loss(tmp_path, argon_file):
    # Adam with a large constant step wanders, so the best validation epoch is not the last one
    for keep in ("best", "last"):
        config = lj_config(argon_file, tmp_path / keep, max_epochs=12, lr=0.3, schedule="constant", keep=keep)
        assert run(tmp_path, config, name=f"{keep}.yaml") == 0
    rows = read_metrics_csv(tmp_path / "best" / "metrics.csv")
    assert [r["val_loss"] for r in rows] == [r["val_loss"] for r in read_metrics_csv(tmp_path / "last" / "metrics.csv")]
    best_epoch = min(range(len(rows)), key=lambda k: rows[k]["val_loss"]) + 1
    assert best_epoch < len(rows)
    assert report_of(tmp_path / "best")["best_epoch"] == best_epoch
    assert report_of(tmp_path / "last")["best_epoch"] == len(rows)
    sigma = {k: float(nnip.load(tmp_path / k / "model.pt").terms[0].sigma.values.detach()) for k in ("best", "last")}
    assert sigma["best"] != pytest.approx(sigma["last"], rel=1e-9)
