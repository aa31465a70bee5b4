"""The shipped example configurations train (a few epochs) and improve on their starting point."""

import json
from pathlib import Path

import pytest

import nnip
from nnip.cli import main
from nnip.training.build import build_model
from nnip.training.config import load_config
from nnip.training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]


#: config -> the fraction of the untrained model's test force MAE that EPOCHS epochs must reach
IMPROVEMENT = {"morse_si.yaml": 0.6, "schnet_ethanol.yaml": 0.6, "bp_ethanol.yaml": 0.6, "painn_ethanol.yaml": 0.6,
               "painn_si.yaml": 0.75, "equivariant_ethanol.yaml": 0.6,
               "equivariant_si.yaml": 0.75,  # the Si configs: 4 epochs are 20 steps on 10 frames
               "schnet_electrostatics_ethanol.yaml": 0.6, "coordinate_mlp_ethanol.yaml": 1.0}
#: epochs per config (default 4): the equivariant model starts slower on Si (at 40 epochs it equals PaiNN);
#: its test stress error beats the untrained model's after 20 epochs (0.0052 vs 0.0077 eV/Å^3), not after 10
EPOCHS = {"equivariant_si.yaml": 20}


@pytest.mark.parametrize("name", sorted(IMPROVEMENT))
def test_example_config_fits(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # example data paths are relative to the repository root
    path = ROOT / "configs" / name
    output = tmp_path / "run"
    args = ["train", str(path), "--set", f"output={output}", "--set", f"training.max_epochs={EPOCHS.get(name, 4)}",
            "--set", "training.progress=false"]
    assert main(args) == 0
    report = json.loads((output / "report.json").read_text())
    config, _ = load_config(path)
    frames = nnip.read(config.data.test)
    start = build_model(config.model, sorted(set(frames[0].numbers.tolist())), seed=config.seed)
    before, _ = evaluate(start, frames)  # the untrained model (E0 = 0, scale 1)
    assert report["test"]["forces_mae"] < IMPROVEMENT[name] * before["forces_mae"]
    if config.training.loss.stress_weight > 0:  # the periodic configs also learn the DFT stress
        assert report["test"]["stress_mae"] < before["stress_mae"]


def test_every_config_in_the_repository_is_tested():
    assert sorted(p.name for p in (ROOT / "configs").glob("*.yaml")) == sorted(IMPROVEMENT)
