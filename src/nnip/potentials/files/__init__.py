"""Model files: save/load of checkpoints (weights_only) and torch.export deployment."""
