"""Uncertainty: calibration of ensemble variances against observed errors."""

from nnip.uncertainty.calibration import (
    calibration_curve, fit_variance_scale, gaussian_nll, miscalibration_area,
)

__all__ = ["calibration_curve", "fit_variance_scale", "gaussian_nll", "miscalibration_area"]
