"""Last-layer uncertainty (LLPR): the posterior of a trained network's readout layer equals the closed-form
Bayesian posterior written out in numpy from finite differences of the energy in those weights, and `nnip train`
with training.posterior_samples gives one SchNet calibrated variances that rank its errors and whose gradient
the adversarial attack can follow."""

import numpy as np
import torch

import nnip
from nnip.data import bundled
from nnip.data.dataset import AtomicDataset
from nnip.data.graph import AtomicGraph
from nnip.potentials import build_potential
from nnip.potentials.contract.ensemble import Ensemble
from nnip.training.loss import LossConfig
from nnip.uncertainty.last_layer import last_layer_ensemble, readout_parameters


def _outputs(potential, atoms) -> tuple[float, np.ndarray]:
    graph = AtomicGraph.from_atoms(atoms, potential.neighbor_request(), dtype=torch.float64)
    out = potential(graph)
    return float(out["energy"].detach()), out["forces"].detach().numpy()


def _rows_by_finite_differences(potential, frames, step=1e-3):
    """dE_b / d theta (B, P) and dF / d theta (3N, P) of the readout weights, by central differences with a small
    step (the module under test uses unit steps)."""
    parameters = readout_parameters(potential)
    size = sum(p.numel() for p in parameters)
    energy, forces = np.zeros((len(frames), size)), np.zeros((3 * sum(len(a) for a in frames), size))
    column = 0
    for p in parameters:
        flat = p.data.view(-1)
        for k in range(flat.numel()):
            flat[k] += step
            plus = [_outputs(potential, a) for a in frames]
            flat[k] -= 2 * step
            minus = [_outputs(potential, a) for a in frames]
            flat[k] += step
            energy[:, column] = [(a[0] - b[0]) / (2 * step) for a, b in zip(plus, minus)]
            forces[:, column] = np.concatenate([(a[1] - b[1]).reshape(-1) / (2 * step) for a, b in zip(plus, minus)])
            column += 1
    return energy, forces


def test_last_layer_posterior_equals_the_closed_form_bayesian_posterior():
    """Sigma = alpha^2 (G + lambda I)^-1 with G from the loss's energy and force rows, alpha^2 the mean squared
    validation force error over its predicted variance; the exact posterior ensemble's energy and force
    variances on unseen structures equal x^T Sigma x, and its mean is the network."""
    torch.manual_seed(0)
    potential = build_potential({"elements": [1, 6, 8], "terms": [
        {"name": "schnet", "config": {"features": 8, "interactions": 2, "cutoff": 4.0}}]}).double()
    frames = nnip.read(bundled("ethanol_gfn2_300K.extxyz"), index=":24")
    train, val, test = frames[:16], frames[16:22], frames[22:]
    request = potential.neighbor_request()
    loss = LossConfig(energy_weight=2.0, forces_weight=1.0)
    ensemble, figures = last_layer_ensemble(potential, AtomicDataset(train, request), AtomicDataset(val, request),
                                            samples=100, loss=loss, batch_size=5)
    size = sum(p.numel() for p in readout_parameters(potential))
    assert len(ensemble) == 2 * size  # K >= P: exact variances

    energy_rows, force_rows = _rows_by_finite_differences(potential, train)
    n_atoms = np.array([len(a) for a in train], dtype=float)
    rows = np.concatenate([energy_rows / n_atoms[:, None] * np.sqrt(2.0 / len(train)),
                           force_rows * np.sqrt(1.0 / n_atoms.sum())])
    inverse = np.linalg.inv(rows.T @ rows + figures["lambda"] * np.eye(size))
    _, val_rows = _rows_by_finite_differences(potential, val)
    errors = np.concatenate([(_outputs(potential, a)[1] - a.get_forces()).reshape(-1) for a in val])
    alpha2 = np.mean(errors ** 2 / np.einsum("bp,pq,bq->b", val_rows, inverse, val_rows))
    assert abs(alpha2 / figures["alpha2"] - 1) < 1e-5
    test_energy, test_forces = _rows_by_finite_differences(potential, test)
    energy_var = alpha2 * np.einsum("bp,pq,bq->b", test_energy, inverse, test_energy)
    forces_var = alpha2 * np.einsum("bp,pq,bq->b", test_forces, inverse, test_forces)
    out = [ensemble(AtomicGraph.from_atoms(a, request, dtype=torch.float64)) for a in test]
    np.testing.assert_allclose([float(o["energy"].detach()) for o in out], [_outputs(potential, a)[0] for a in test],
                               rtol=1e-8)
    np.testing.assert_allclose([float(o["energy_var"].detach()) for o in out], energy_var, rtol=1e-5)
    np.testing.assert_allclose(np.concatenate([o["forces_var"].detach().numpy().reshape(-1) for o in out]),
                               forces_var, rtol=1e-5, atol=1e-12 * forces_var.max())


def test_train_a_network_with_last_layer_uncertainty(tmp_path):
    report = nnip.train({"output": str(tmp_path / "run"), "seed": 0,
                         "data": {"train": str(bundled("ethanol_gfn2_300K.extxyz")),
                                  "test": str(bundled("ethanol_gfn2_1000K.extxyz")), "split": {"val": 20}},
                         "model": {"name": "schnet", "features": 16, "interactions": 2, "cutoff": 4.0},
                         "training": {"max_epochs": 25, "batch_size": 8, "lr": 3e-3, "posterior_samples": 8,
                                      "schedule": "plateau", "ema_decay": None, "clip_grad_norm": None,
                                      "progress": False, "plots": False}})  # the settings this test was measured with
    model = nnip.load(tmp_path / "run" / "model.pt")
    assert len(model) == 16 and float(model.variance_scale) > 0
    assert report["last_layer_lambda"] > 0 and report["last_layer_alpha2"] > 0
    assert report["test"]["uncertainty_spearman"] > 0.2, report["test"]
    assert report["test"]["forces_std_mean"] > report["val"]["forces_std_mean"]  # 1000 K is less familiar
    atoms = nnip.read(bundled("ethanol_gfn2_1000K.extxyz"), index="0")[0]
    graph = AtomicGraph.from_atoms(atoms, model.neighbor_request(), dtype=model.dtype)
    graph.positions.requires_grad_(True)
    out = model(graph, create_graph=True)
    (gradient,) = torch.autograd.grad(out["forces_var"].sum(), graph.positions)  # what the attack ascends
    assert torch.isfinite(gradient).all() and float(gradient.abs().max()) > 0


def test_a_warm_start_from_a_saved_posterior_takes_its_mean(tmp_path):
    """Active learning's warm start from a posterior ensemble (training.posterior_samples) starts from the fitted
    network, the mean of the antithetic draws, not from one random draw."""
    from nnip.training.warm_start import start_from

    torch.manual_seed(0)
    spec = {"elements": [1, 6, 8], "terms": [{"name": "schnet", "config": {"features": 8, "interactions": 1,
                                                                             "cutoff": 4.0}}]}
    potential = build_potential(spec).double()
    frames = nnip.read(bundled("ethanol_gfn2_300K.extxyz"), index=":12")
    request = potential.neighbor_request()
    ensemble, _ = last_layer_ensemble(potential, AtomicDataset(frames[:8], request), AtomicDataset(frames[8:], request),
                                      samples=3, loss=LossConfig())
    nnip.save(ensemble, tmp_path / "posterior.pt")
    fresh, drawn = build_potential(spec).double(), build_potential(spec).double()
    start_from(fresh, str(tmp_path / "posterior.pt"), member=0)  # recognised as a posterior: its mean
    start_from(drawn, str(tmp_path / "posterior.pt"), member=0, mean=False)
    readout = readout_parameters(potential)[0]
    torch.testing.assert_close(readout_parameters(fresh)[0], readout, rtol=1e-10, atol=1e-12)
    assert float((readout_parameters(drawn)[0] - readout).abs().max()) > 1e-6  # one member is a draw
    independent = [build_potential(spec).double() for _ in range(4)]
    nnip.save(Ensemble(independent), tmp_path / "four.pt")
    start_from(drawn, str(tmp_path / "four.pt"), member=1)  # independent members: no mean, the member asked for
    torch.testing.assert_close(readout_parameters(drawn)[0], readout_parameters(independent[1])[0])
