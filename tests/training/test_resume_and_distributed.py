"""Exact resume after kill -9, and data-parallel training matching a single process."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

import nnip
from nnip.training.checkpoint import read_metrics_csv

from conftest import lj_config

pytestmark = pytest.mark.slow


def nnip_command(*args):
    return [sys.executable, "-m", "nnip", *map(str, args)]


def config_file(tmp_path, name, config):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def resumable_config(argon_file, output):
    # float64, EMA, plateau schedule and clipping: every piece of state must survive the kill.
    return lj_config(argon_file, output, max_epochs=24, batch_size=2, dtype="float64", ema_decay=0.9,
                     schedule="plateau", plateau_patience=1, clip_grad_norm=0.5, lr=0.02)


def test_resume_after_kill_9_equals_an_uninterrupted_run(tmp_path, argon_file):
    straight = config_file(tmp_path, "straight", resumable_config(argon_file, tmp_path / "straight"))
    subprocess.run(nnip_command("train", straight), check=True, capture_output=True)

    killed = config_file(tmp_path, "killed", resumable_config(argon_file, tmp_path / "killed"))
    metrics = tmp_path / "killed" / "metrics.csv"
    process = subprocess.Popen(nnip_command("train", killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None:  # synchronised on the 5th stored row, whatever the machine's speed
        if metrics.is_file() and len(read_metrics_csv(metrics)) >= 5:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(read_metrics_csv(metrics))
    assert 5 <= done < 24 and not (tmp_path / "killed" / "report.json").exists()

    subprocess.run(nnip_command("train", killed, "--resume"), check=True, capture_output=True)
    a = nnip.load(tmp_path / "straight" / "model.pt").state_dict()
    b = nnip.load(tmp_path / "killed" / "model.pt").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-10)
    rows_a = read_metrics_csv(tmp_path / "straight" / "metrics.csv")
    rows_b = read_metrics_csv(tmp_path / "killed" / "metrics.csv")
    assert [r["epoch"] for r in rows_b] == list(range(1, 25))
    for ra, rb in zip(rows_a, rows_b):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-10)
        assert ra["lr"] == rb["lr"]


def test_resume_refuses_a_changed_config(tmp_path, argon_file):
    config = lj_config(argon_file, tmp_path / "run", max_epochs=1)
    path = config_file(tmp_path, "run", config)
    subprocess.run(nnip_command("train", path), check=True, capture_output=True)
    result = subprocess.run(nnip_command("train", path, "--resume", "--set", "training.lr=0.5"),
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "training.lr differs" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.xdist_group("torchrun")  # one torchrun at a time: two standalone rendezvous at once can collide
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, argon_file, optimizer):
    # 40 training structures in global batches of 13: the last batch has one structure,
    # so one rank has nothing of its own in it.
    def config(name):
        return config_file(tmp_path, name, lj_config(argon_file, tmp_path / name, max_epochs=4, batch_size=13,
                                                     dtype="float64", lr=0.02 if optimizer == "adam" else 1.0,
                                                     optimizer=optimizer, train_e0=True))

    subprocess.run(nnip_command("train", config("single")), check=True, capture_output=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "nnip", "train", str(config("ddp"))]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[:3000]
    single = read_metrics_csv(tmp_path / "single" / "metrics.csv")
    ddp = read_metrics_csv(tmp_path / "ddp" / "metrics.csv")
    assert len(single) == len(ddp) == 4
    for a, b in zip(single, ddp):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
    assert not (tmp_path / "ddp" / "members").exists()
    assert (tmp_path / "ddp" / "report.json").is_file()
