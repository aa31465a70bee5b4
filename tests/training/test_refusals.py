"""`nnip train` refuses nonsense before it trains, stops on a numerical failure without saving a model,
and never lets two processes write one run folder."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from nnip.cli import main

from conftest import lj_config
from test_train_cli import one_error_line, write_config


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("training", "lr", float("nan"), "training.lr must be a finite number, got nan"),
    ("training", "lr", -0.1, "training.lr must be > 0, got -0.1"),
    ("training", "clip_grad_norm", -1.0, "training.clip_grad_norm must be > 0, got -1"),
    ("training", "max_time", -5.0, "training.max_time must be > 0, got -5"),
    ("training", "plateau_patience", -1, "training.plateau_patience must be >= 0, got -1"),
    ("training", "checkpoint_seconds", -1.0, "training.checkpoint_seconds must be >= 0, got -1"),
    ("training", "loss", {"energy_weight": float("nan")}, "training.loss.energy_weight must be a finite number"),
    ("training", "loss", {"energy_weight": 0.0, "forces_weight": 0.0}, "are all 0: nothing to train on"),
    ("", "seed", 2**40, "seed must be >= 0 and <= 4294967295, got 1099511627776"),
    ("model", "cutoff", float("nan"), "model.terms[0].cutoff must be a finite number, got nan"),
    ("model", "cutoff", 1e308, "cutoff must be > 0 and <= 100, got 1e+308"),
    ("model", "e0", {"Ar": float("nan")}, "model.e0.Ar must be a finite number, got nan"),
    ("model", "scale", 0, "model.scale must be > 0, got 0"),
    ("data", "split", {"val": 1.5}, "val: expected a fraction below 1 or a whole number of structures, got 1.5"),
])
def test_values_out_of_range_are_one_line_errors(tmp_path, argon_file, capsys, section, key, value, message):
    config = lj_config(argon_file, tmp_path / "run")
    (config.setdefault(section, {}) if section else config)[key] = value
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_a_key_given_twice_is_refused(tmp_path, argon_file, capsys):
    text = yaml.safe_dump(lj_config(argon_file, tmp_path / "run")) + "seed: 3\n"  # seed is already there
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    assert main(["train", str(path)]) == 2
    line = len(text.splitlines())  # the second seed
    assert f"twice.yaml: line {line} is not valid YAML (key 'seed' given twice)" in one_error_line(capsys)


def test_a_diverging_run_stops_with_the_epoch_and_saves_no_model(tmp_path, argon_file, capsys):
    """lr 1e10 gave a NaN loss every epoch and saved the initial weights as model.pt, exit 0."""
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run", lr=1e10, max_epochs=3))
    assert main(["train", str(config)]) == 2
    line = one_error_line(capsys)
    assert "epoch 1: the" in line and "training.lr is 1e+10" in line and "no model.pt was written" in line
    assert not (tmp_path / "run" / "model.pt").exists()


def test_a_network_is_not_saved_untrained(tmp_path, argon_file, capsys):
    """A max_time that ends before the first epoch left a network's random weights as model.pt, exit 0."""
    config = lj_config(argon_file, tmp_path / "run", max_epochs=10, max_time=1e-9)
    config["model"] = {"name": "schnet", "features": 4, "interactions": 1, "basis": 4, "cutoff": 5.0, "e0": "zero"}
    assert main(["train", str(write_config(tmp_path, config))]) == 2
    assert "ran out before the first epoch finished: nothing was trained" in one_error_line(capsys)
    assert not (tmp_path / "run" / "model.pt").exists()


def _train(config: str, barrier, results) -> None:
    """One of two `nnip train` started together (children of a fork server that imported nnip once)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        barrier.wait()
        code = main(["train", config])
    results.put((code, err.getvalue().strip()))


def test_two_trainings_started_together_into_one_folder_twenty_times(tmp_path, argon_file):
    context = multiprocessing.get_context("forkserver")  # clean children: no threads inherited from pytest
    context.set_forkserver_preload(["nnip.cli", "test_refusals"])
    for trial in range(20):
        run = tmp_path / f"run{trial}"
        config = str(write_config(tmp_path, lj_config(argon_file, run, max_epochs=1, plots=False), f"c{trial}.yaml"))
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_train, args=(config, barrier, results)) for _ in range(2)]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=120) for _ in workers)
        for worker in workers:
            worker.join(10)
        assert [code for code, _ in outcomes] == [0, 2], (trial, outcomes)
        refused = outcomes[1][1]
        assert f"{run}: another nnip run is writing to this folder (pid" in refused, refused
        assert (run / "model.pt").is_file()


def test_overwrite_and_resume_respect_a_running_holder_and_a_killed_one_leaves_no_stale_lock(tmp_path, argon_file,
                                                                                             capsys):
    config = write_config(tmp_path, lj_config(argon_file, tmp_path / "run", max_epochs=400, plots=False))
    holder = subprocess.Popen([sys.executable, "-m", "nnip", "train", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    while not (tmp_path / "run" / "checkpoint.pt").exists():  # synchronised on the event, not on a deadline
        assert holder.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.1)
    for flag in ("--overwrite", "--resume"):
        assert main(["train", str(config), flag]) == 2
        assert f"another nnip run is writing to this folder (pid {holder.pid}: nnip train" in one_error_line(capsys)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "model.pt").exists()
    assert main(["train", str(config), "--resume", "--set", "training.max_epochs=2"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
