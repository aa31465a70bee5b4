"""Last-layer uncertainty of one trained network (LLPR, the last-layer Laplace approximation).

A network's energy and forces are linear in the weights theta of its readouts' final layers
(Term.last_layers): E_b = x_b . theta + (the rest), F_a = D_a theta + (the rest), x_b = dE_b / d theta
(P,) the summed last-layer features of structure b, D_a = dF_a / d theta (3, P). Treating theta alone
as Bayesian, with the backbone fixed and the trained theta as the mean, gives the posterior covariance

    Sigma = alpha^2 (G + lambda I)^-1,   G = w_E / n_E sum_b x_b x_b^T / N_b^2 + w_F / n_F sum_a D_a^T D_a

over the training set, with the loss's weights and normalisation (nnip.training.loss). Energy, force
and stress variances follow as for a linear model (nnip.uncertainty.posterior): x^T Sigma x. lambda and
alpha^2 make the validation forces' errors most likely under the predicted variances (the smallest
Gaussian negative log likelihood over a grid of lambda, alpha^2 at its optimum for each); the posterior
ensemble's variance_scale is then fitted to the same errors as an ensemble's is. The rows are central
differences of unit steps in each weight, exact because of the linearity: 2P evaluations of energy
and forces per batch, one pass over the training and validation sets, and one eigendecomposition of
a P x P matrix. No retraining.

References: F. Bigi, S. Chong, M. Ceriotti, F. Grasselli, Mach. Learn.: Sci. Technol. 5, 045018 (2024)
(LLPR); E. Daxberger et al., NeurIPS 2021 (last-layer Laplace).
"""

from __future__ import annotations

import math

import torch

from nnip import keys
from nnip.data.dataset import AtomicDataset
from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.ensemble import Ensemble
from nnip.uncertainty.posterior import posterior_ensemble

__all__ = ["readout_parameters", "design_rows", "last_layer_factor", "last_layer_ensemble"]

#: lambda tried, relative to the mean eigenvalue of the feature covariance
RELATIVE_LAMBDAS = torch.logspace(-8, 1, 19, dtype=torch.float64)


def readout_parameters(potential: Potential) -> list[torch.Tensor]:
    """Weights and biases of every term's last layers (Term.last_layers), in term order."""
    layers = [layer for term in potential.terms for layer in term.last_layers()]
    return [p for layer in layers for p in (layer.weight, layer.bias) if p is not None]


def _outputs(potential: Potential, graph) -> dict[str, torch.Tensor]:
    with torch.enable_grad():
        return potential(graph, compute_forces=True)


@torch.no_grad()
def design_rows(potential: Potential, graph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy rows dE_b/d theta (B, P) and force rows dF/d theta (N, 3, P), float64, as central differences
    of unit steps in each readout weight: exact, since energy and forces are linear in theta; and the model's
    forces (N, 3), the mean of the last pair of steps."""
    energy_rows, force_rows = [], []
    for tensor in readout_parameters(potential):
        flat = tensor.data.view(-1)
        for k in range(flat.numel()):
            original = float(flat[k])
            flat[k] = original + 1.0
            plus = _outputs(potential, graph)
            flat[k] = original - 1.0
            minus = _outputs(potential, graph)
            flat[k] = original
            energy_rows.append(((plus[keys.ENERGY] - minus[keys.ENERGY]) / 2).to(torch.float64))
            force_rows.append(((plus[keys.FORCES] - minus[keys.FORCES]) / 2).to(torch.float64))
    forces = ((plus[keys.FORCES] + minus[keys.FORCES]) / 2).to(torch.float64)
    return torch.stack(energy_rows, dim=-1), torch.stack(force_rows, dim=-1), forces


def _weighted_rows(potential: Potential, dataset: AtomicDataset, batch_size: int, loss) -> tuple:
    """Rows of the loss (energy per atom times sqrt(w_E / n_E), force components times sqrt(w_F / n_F)) (R, P),
    and the force rows (3N, P) with the model's force errors (3N,) for calibration, of labelled structures."""
    counts = {"energy": sum(1 for s in dataset.samples if torch.isfinite(s.energy)),
              "forces": sum(int(torch.isfinite(s.forces).all(dim=1).sum()) for s in dataset.samples)}
    rows, force_rows, force_errors = [], [], []
    device = potential.e0.device
    for graph, targets in dataset.batches(batch_size, potential.dtype, device=device):
        energy, forces, predicted = design_rows(potential, graph)
        label = targets[keys.ENERGY]
        keep = torch.isfinite(label)
        if loss.energy_weight > 0 and counts["energy"]:
            factor = (loss.energy_weight / counts["energy"]) ** 0.5 / graph.n_atoms.to(torch.float64)
            rows.append((energy * factor[:, None])[keep])
        keep = torch.isfinite(targets[keys.FORCES]).all(dim=1)
        if loss.forces_weight > 0 and counts["forces"]:
            rows.append((forces[keep] * (loss.forces_weight / counts["forces"]) ** 0.5).reshape(-1, energy.shape[1]))
        force_rows.append(forces[keep].reshape(-1, energy.shape[1]))
        force_errors.append((predicted - targets[keys.FORCES])[keep].reshape(-1))
    return torch.cat(rows), torch.cat(force_rows), torch.cat(force_errors)


def last_layer_factor(potential: Potential, train: AtomicDataset, val: AtomicDataset, loss,
                      batch_size: int = 16) -> tuple[torch.Tensor, dict[str, float]]:
    """L (P, P) with L L^T = Sigma of the module docstring, and the chosen lambda and alpha^2."""
    if not readout_parameters(potential):
        raise ConfigError("last-layer uncertainty needs a network with a readout (schnet, painn, equivariant, "
                          "behler_parrinello)")
    if val is None or not len(val):
        raise ConfigError("last-layer uncertainty chooses its regularisation on validation data: set data.split.val")
    train_rows, _, _ = _weighted_rows(potential, train, batch_size, loss)
    _, val_rows, val_errors = _weighted_rows(potential, val, batch_size, loss)
    mu, vectors = torch.linalg.eigh(train_rows.T @ train_rows)
    mu = mu.clamp(min=0.0)
    projected = val_rows @ vectors
    best = None
    for lam in (RELATIVE_LAMBDAS * mu.mean().clamp(min=1e-300)).tolist():
        variance = (projected ** 2 / (mu + lam)).sum(dim=1).clamp(min=1e-300)
        alpha2 = float((val_errors ** 2 / variance).mean())
        nll = 0.5 * (float(torch.log(alpha2 * variance).mean()) + 1.0 + math.log(2 * math.pi))
        if best is None or nll < best[0]:
            best = (nll, lam, alpha2)
    nll, lam, alpha2 = best
    factor = vectors * (alpha2 / (mu + lam)).sqrt()
    return factor, {"lambda": lam, "alpha2": alpha2, "val_forces_nll": nll}


def last_layer_ensemble(potential: Potential, train: AtomicDataset, val: AtomicDataset, samples: int, loss,
                        seed: int = 0, batch_size: int = 16) -> tuple[Ensemble, dict[str, float]]:
    """The posterior of the last layers as an ensemble of 2K draws (nnip.uncertainty.posterior), and the figures
    of :func:`last_layer_factor`; ``loss``: the training's LossConfig (its energy and force weights)."""
    factor, figures = last_layer_factor(potential, train, val, loss, batch_size)
    return posterior_ensemble(potential, factor, samples, seed, parameters=readout_parameters), figures
