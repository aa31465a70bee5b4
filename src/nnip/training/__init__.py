"""Training: loss, metrics, the trainer, configuration, checkpoints, ensembles and k-fold runs."""

from nnip.training.config import (
    DataConfig, ModelConfig, RunConfig, SplitConfig, TrainingConfig, apply_overrides, load_config, parse_config,
)
from nnip.training.evaluate import evaluate, format_metrics
from nnip.training.loss import LossConfig
from nnip.training.metrics import Predictions, error_metrics, predict
from nnip.training.run import run_training, train, train_model
from nnip.training.trainer import Trainer, TrainResult

__all__ = [
    "train",
    "DataConfig", "ModelConfig", "RunConfig", "SplitConfig", "TrainingConfig", "LossConfig", "load_config",
    "parse_config", "apply_overrides", "evaluate", "format_metrics", "Predictions", "error_metrics", "predict",
    "run_training", "train_model", "Trainer", "TrainResult",
]
