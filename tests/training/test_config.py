"""Strict YAML configuration: errors name the key, --set overrides, sums of terms."""

import pytest
import yaml

from nnip.errors import ConfigError
from nnip.training.config import apply_overrides, load_config, parse_config

BASE = {"data": {"train": "train.extxyz"}, "model": {"name": "lj", "sigma": 3.4}}


def test_defaults_and_one_term_shorthand():
    config = parse_config(BASE)
    assert config.model.terms == [{"name": "lj", "sigma": 3.4}]
    assert config.training.loss.forces_weight == 10.0 and config.ensemble == 1 and config.kfold is None
    assert config.data.split.val == 0.1


def test_sum_of_terms_with_potential_level_keys():
    config = parse_config({"data": {"train": "t.xyz"},
                           "model": {"terms": [{"name": "zbl"}, {"name": "morse", "cutoff": 5.0}], "e0": "zero"}})
    assert [t["name"] for t in config.model.terms] == ["zbl", "morse"] and config.model.e0 == "zero"


@pytest.mark.parametrize("data, message", [
    ({**BASE, "traning": {}}, "unknown key 'traning' (did you mean 'training'?)"),
    ({**BASE, "training": {"loss": {"force_weight": 1}}}, "training.loss.force_weight: unknown key (did you mean 'forces_weight'?)"),
    ({**BASE, "training": {"batch_size": 2.5}}, "training.batch_size: expected int, got 2.5"),
    ({**BASE, "training": {"optimizer": "sgd"}}, "training: optimizer: expected one of adam, adamw, lbfgs, least_squares, got 'sgd'"),
    ({**BASE, "model": {"name": "lj", "e0": "fit"}}, "model: e0: expected one of least_squares, isolated, zero"),
    ({**BASE, "model": {"name": "lj", "elemnts": ["Ar"]}}, "model.elemnts: unknown key (did you mean 'elements'?)"),
    ({**BASE, "model": {"terms": [{"name": "morse", "radius": 1}]}}, "model.terms[0].radius: unknown key"),
    ({"model": BASE["model"]}, "a 'data' section is required"),
    ({**BASE, "data": {"val": "v.xyz"}}, "data: train: a training data file is required"),
    ({**BASE, "ensemble": 3, "kfold": 5}, "set ensemble: 1"),
    ({**BASE, "kfold": 5, "data": {"train": "t.xyz", "test": "test.xyz"}}, "kfold: each fold is the test set"),
    ({**BASE, "training": {"device": "gpu"}}, "training: device: expected cpu, cuda or cuda:N"),
    ({**BASE, "model": {"name": "lj", "e0": {"Xx": 1.0}}}, "model: e0: unknown element 'Xx'"),
])
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert message in str(error.value)


def test_set_overrides_nested_keys_and_parses_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    config, resolved = load_config(path, ["training.lr=0.05", "training.loss.stress_weight=1", "model.sigma=3",
                                          "data.split.val=20", "ensemble=4"])
    assert config.training.lr == 0.05 and config.training.loss.stress_weight == 1.0
    assert config.model.terms[0]["sigma"] == 3 and config.data.split.val == 20 and config.ensemble == 4
    assert resolved["training"]["lr"] == 0.05
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(BASE, ["training.lr"])


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: line"):
        load_config(path)


def test_yaml_1_1_exponent_text_is_read_as_a_number():
    config = parse_config({**BASE, "training": {"lr": "1e-3", "max_time": "3e2"}})
    assert config.training.lr == 0.001 and config.training.max_time == 300.0
