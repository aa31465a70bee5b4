"""Report figures: parity plots and learning curves are real PNGs; the error text is exact."""

import math

import matplotlib.image
import numpy as np
import pytest

from nnip.plots import error_summary, learning_curves, parity_plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_error_summary_matches_hand_computation_in_milli_units():
    # errors 0.01, 0, -0.02 eV/Å: MAE 0.01, RMSE sqrt(5e-4 / 3) = 0.01291 eV/Å
    text = error_summary([0.0, 1.0, 2.0], [0.01, 1.0, 1.98], "eV/Å")
    assert text == "MAE 10.0 meV/Å\nRMSE 12.9 meV/Å\nN 3"


def test_error_summary_uses_the_unit_itself_when_errors_reach_one():
    # errors 1, 3 eV/atom: MAE 2, RMSE sqrt(5) = 2.236
    text = error_summary(np.array([[0.0], [0.0]]), np.array([[1.0], [-3.0]]), "eV/atom")
    assert text == "MAE 2.000 eV/atom\nRMSE 2.236 eV/atom\nN 2"


def test_error_summary_drops_missing_labels_pairwise():
    text = error_summary([0.0, math.nan, 1.0, 5.0], [0.002, 7.0, 1.002, math.inf], "eV/atom")
    assert text == "MAE 2.0 meV/atom\nRMSE 2.0 meV/atom\nN 2"


def test_parity_plot_writes_png_with_nans_dropped(tmp_path):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 3))
    predicted = reference + rng.normal(scale=0.02, size=(50, 3))
    reference[3, 1] = np.nan
    predicted[7, 0] = np.nan
    path = parity_plot(reference, predicted, tmp_path / "new" / "dir" / "forces.png",
                       quantity="force", unit="eV/Å", title="forces")
    assert path == tmp_path / "new" / "dir" / "forces.png"
    assert_png(path)


def test_parity_plot_uses_hexbin_for_many_points(tmp_path):
    rng = np.random.default_rng(1)
    reference = rng.normal(size=30000)
    path = parity_plot(reference, reference + rng.normal(scale=0.1, size=30000),
                       str(tmp_path / "many.png"), quantity="energy", unit="eV/atom")
    assert_png(path)


def test_parity_plot_rejects_shape_mismatch_and_all_nan(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        parity_plot(np.zeros(4), np.zeros(5), tmp_path / "a.png", quantity="energy", unit="eV")
    with pytest.raises(ValueError, match="no finite"):
        parity_plot([np.nan, 1.0], [2.0, np.nan], tmp_path / "b.png", quantity="energy", unit="eV")
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def typical_rows(n=20):
    return [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "lr": 1e-3 * 0.9**e,
         "val_energy_mae_per_atom": 0.05 / (e + 1), "val_forces_mae": 0.2 / (e + 1)}
        for e in range(n)
    ]


def test_learning_curves_writes_png_for_typical_rows(tmp_path):
    assert_png(learning_curves(typical_rows(), tmp_path / "curves" / "lc.png"))


def test_learning_curves_handles_nan_missing_and_csv_strings(tmp_path):
    rows = typical_rows(10)
    rows[0]["val_loss"] = math.nan
    del rows[4]["lr"]
    for row in rows:  # a column that is all NaN, one that is absent, text as from csv
        row["val_forces_mae"] = math.nan
        del row["val_energy_mae_per_atom"]
        row["train_loss"] = str(row["train_loss"])
    rows[2]["train_loss"] = ""
    assert_png(learning_curves(rows, tmp_path / "lc.png"))


def test_learning_curves_with_selected_columns(tmp_path):
    assert_png(learning_curves(typical_rows(), tmp_path / "sel.png", columns=["val_loss"]))
    with pytest.raises(ValueError, match="no row"):
        learning_curves(typical_rows(), tmp_path / "bad.png", columns=["val_lsos"])


def test_learning_curves_rejects_empty_or_unplottable_rows(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        learning_curves([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="nothing finite"):
        learning_curves([{"epoch": 0, "val_loss": math.nan}], tmp_path / "nan.png")
    assert not (tmp_path / "empty.png").exists()
