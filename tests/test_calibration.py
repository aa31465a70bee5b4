"""Calibration measures on synthetic Gaussian errors, and the ensemble's variance scale."""

import numpy as np
import pytest
import torch

from nnip.potentials import Ensemble, build_potential
from nnip.testing.structures import cluster
from nnip.data.graph import AtomicGraph
from nnip import keys
from nnip.uncertainty import calibration_curve, fit_variance_scale, gaussian_nll, miscalibration_area


def test_calibrated_gaussian_errors_give_a_diagonal_curve_and_the_analytic_nll():
    rng = np.random.default_rng(0)
    variances = rng.uniform(0.5, 2.0, 200000)
    errors = rng.normal(0.0, np.sqrt(variances))
    assert fit_variance_scale(errors, variances) == pytest.approx(1.0, abs=0.01)
    assert miscalibration_area(errors, variances) < 0.005
    expected_nll = 0.5 * np.mean(np.log(2 * np.pi * variances)) + 0.5
    assert gaussian_nll(errors, variances) == pytest.approx(expected_nll, abs=0.01)
    # overconfident by a factor 3 in std: the scale recovers 9, the curve falls below the diagonal
    assert fit_variance_scale(errors, variances / 9) == pytest.approx(9.0, rel=0.02)
    expected, observed = calibration_curve(errors, variances / 9)
    assert np.all(observed <= expected + 1e-3) and miscalibration_area(errors, variances / 9) > 0.2


def test_few_member_spreads_are_calibrated_despite_their_heavy_tail():
    # with M members the sample variance is sigma^2 chi^2_(M-1)/(M-1): errors over predicted std
    # follow a Student t with M-1 degrees of freedom, whose e^2/v has an infinite mean for M = 3
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 2.0, 100000)
    errors = rng.normal(0.0, sigma)
    variances = sigma**2 * rng.chisquare(2, sigma.size) / 2  # 3 members
    maximum_likelihood = np.mean(errors**2 / variances)
    scale = fit_variance_scale(errors, variances)
    assert maximum_likelihood > 5 * scale  # dominated by the tiny spreads (11.2 vs 1.54 here)
    assert miscalibration_area(errors, scale * variances) < 0.6 * miscalibration_area(errors, maximum_likelihood
                                                                                         * variances)
    assert miscalibration_area(errors, scale * variances) < 0.06


def test_ensemble_variance_is_the_sample_variance_times_the_scale():
    members = [build_potential({"elements": [18], "terms": [
        {"name": "lj", "config": {"sigma": s, "cutoff": 7.0}}]}).double() for s in (3.3, 3.4, 3.6)]
    graph = AtomicGraph.from_atoms(cluster([18], 6, 3.8, seed=1), 7.0)
    energies = torch.stack([m(graph)[keys.ENERGY].detach() for m in members])
    ensemble = Ensemble(members)
    out = ensemble(graph)
    torch.testing.assert_close(out[keys.ENERGY + keys.VAR_SUFFIX].detach(), energies.var(dim=0))
    ensemble.variance_scale.fill_(4.0)
    torch.testing.assert_close(ensemble(graph)[keys.ENERGY + keys.VAR_SUFFIX].detach(), 4 * energies.var(dim=0))
    identical = Ensemble([members[0], members[0]])
    assert float(identical(graph)[keys.FORCES + keys.VAR_SUFFIX].abs().max()) == 0.0
