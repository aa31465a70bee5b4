"""Report figures: parity plots and learning curves are real PNGs; the error text is exact."""

import math

import matplotlib.image
import numpy as np
import pytest

from nnip import plots
from nnip.plots import active_learning_plot, column_label, error_summary, learning_curves, parity_plot

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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions build, kept (and drawn) instead of written."""
    figures = []

    def keep(fig, path):
        fig.canvas.draw()
        figures.append(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", keep)
    return figures


def _overlapping(labels) -> list[tuple[str, str]]:
    boxes = [(label.get_text(), label.get_window_extent()) for label in labels if label.get_text()]
    return [(a, b) for (a, box_a), (b, box_b) in zip(boxes, boxes[1:]) if box_a.overlaps(box_b)]


def test_parity_tick_labels_never_touch_for_total_energies_per_atom(drawn):
    rng = np.random.default_rng(2)
    reference = -34.35 + 0.03 * rng.normal(size=200)  # the demo's energies: long labels such as -34.375
    parity_plot(reference, reference + 0.005 * rng.normal(size=200), "e.png", quantity="energy", unit="eV/atom")
    ax = drawn[0].axes[0]
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        assert len([t for t in labels if t.get_text()]) >= 3
        assert _overlapping(labels) == []


def test_learning_curves_legends_are_words_with_units_on_the_axes(drawn):
    learning_curves(typical_rows(), "lc.png")
    legends = {t.get_text() for ax in drawn[0].axes if ax.get_legend() for t in ax.get_legend().get_texts()}
    assert legends == {"training loss", "validation loss", "validation energy MAE", "validation force MAE",
                       "learning rate"}
    ylabels = " ".join(ax.get_ylabel() for ax in drawn[0].axes)
    assert "meV/atom" in ylabels and "meV/Å" in ylabels
    assert column_label("test_forces_rmse") == "test force RMSE" and column_label("my_metric") == "my_metric"


@pytest.mark.parametrize("generations", [1, 2, 7])
def test_generation_axes_have_whole_generations_only(drawn, generations):
    rows = [{"generation": g, "test_forces_mae": 0.1 / (g + 1), "labels": 5 * g, "oracle_calls": 5 * g,
             "rejected_contact": 0.1, "sample_spread": 0.05} for g in range(generations)]
    active_learning_plot(rows, "active.png")
    for ax in drawn[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
