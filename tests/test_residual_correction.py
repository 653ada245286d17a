"""The correction along the dominant residual directions, by hand."""

import numpy as np
import pytest

from sklearn_modgap.aligners import residual_direction_correction

# Substitutes at (+-1, 0), targets at (+-0.6, 0.8): residuals r = (-0.4, 0.8) and
# (0.4, 0.8), mean residual (0, 0.8).  Centred, the residual varies along e1 only
# (covariance diag(0.16, 0)); uncentred, its second moment is diag(0.16, 0.64),
# led by e2.
SUBSTITUTES = np.array([[1.0, 0.0], [-1.0, 0.0]])
TARGET = np.array([[0.6, 0.8], [-0.6, 0.8]])


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_mean_residual_outside_the_dominant_direction_moves_nothing():
    # q = 1, centred: the dominant direction e1 is orthogonal to the mean residual.
    corrected = residual_direction_correction(TARGET, SUBSTITUTES, q=1, alpha=1.0)
    np.testing.assert_allclose(corrected, SUBSTITUTES, atol=1e-12)


def test_uncentred_directions_hold_the_mean_residual():
    corrected = residual_direction_correction(TARGET, SUBSTITUTES, q=1, alpha=1.0, centered=False)
    np.testing.assert_allclose(corrected, np.array([[1.0, 0.8], [-1.0, 0.8]]) / np.sqrt(1.64), atol=1e-12)


def test_alpha_scales_the_step_before_the_normalisation():
    corrected = residual_direction_correction(TARGET, SUBSTITUTES, q=2, alpha=0.5)
    np.testing.assert_allclose(corrected, np.array([[1.0, 0.4], [-1.0, 0.4]]) / np.sqrt(1.16), atol=1e-12)
    np.testing.assert_allclose(
        residual_direction_correction(TARGET, SUBSTITUTES, q=2, alpha=0.0), SUBSTITUTES, atol=1e-12
    )


def test_all_directions_at_full_strength_remove_the_mean_residual():
    rng = np.random.default_rng(0)
    target = _unit(rng.normal(size=(40, 6)) + 2.0)
    substitutes = _unit(rng.normal(size=(40, 6)) - 1.0)
    corrected = residual_direction_correction(target, substitutes, q=6, alpha=1.0)
    # q = d spans the whole space: before the renormalisation z' = z + r_bar.
    moved = substitutes + (target - substitutes).mean(0)
    np.testing.assert_allclose(corrected, _unit(moved), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [({"q": 3}, ValueError, "exceeds the 2 features"), ({"alpha": -0.1}, ValueError, "alpha")],
)
def test_bad_parameters_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        residual_direction_correction(TARGET, SUBSTITUTES, **kwargs)


def test_unpaired_rows_are_refused():
    with pytest.raises(ValueError, match="paired row by row"):
        residual_direction_correction(TARGET, np.vstack([SUBSTITUTES, SUBSTITUTES[:1]]), q=1)
