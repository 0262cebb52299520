"""The estimator keeps scikit-learn's protocol: clone, Pipeline, GridSearchCV, check_is_fitted."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpanda as tp
from helpers import planted

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

pytestmark = pytest.mark.backend_independent  # the protocol, not the maths


@pytest.fixture(scope="module")
def data():
    Z, _, _ = planted(n=150, channels=8, height=4, width=4, n_parts=4, noise=0.05)
    return Z


def test_clone_copies_parameters_not_fitted_state(data):
    est = tp.Tucker2((None, 3), solver="mu", tol=1e-5, random_state=0).fit(data)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert copy.get_params(deep=True) == copy.get_params(deep=False)
    assert not hasattr(copy, "factorization_")
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    check_is_fitted(est)


def test_fitted_attributes_end_in_an_underscore_and_agree(data):
    est = tp.Tucker2((5, 3), random_state=0).fit(data)
    fit = est.factorization_
    assert est.n_features_in_ == 8 * 16 and est.n_channels_ == 8
    assert est.spatial_shape_ == (4, 4)
    assert est.A_ is fit.A and est.P_ is fit.P
    assert est.parts_.shape == (3, 4, 4)  # "parts" are maps everywhere
    np.testing.assert_array_equal(est.parts_, fit.parts)


def test_score_is_the_explained_share_of_the_energy(data):
    est = tp.Tucker2((None, 4), random_state=0).fit(data[:100])
    Zhat = est.inverse_transform(est.transform(data[100:]))
    residual = np.sum((data[100:] - Zhat) ** 2) / np.sum(data[100:] ** 2)
    assert est.score(data[100:]) == pytest.approx(1 - residual, rel=1e-9)
    assert est.score(data[100:], y=None) <= 1


def test_a_pipeline_fits_and_predicts_through_the_cores(data):
    # the target is the energy of each sample's first appearance: readable from the cores
    y = np.sum(data[:, :1] ** 2, axis=(1, 2, 3))
    flatten = FunctionTransformer(lambda G: np.asarray(G).reshape(len(G), -1) ** 2)
    pipe = make_pipeline(tp.Tucker2((None, 4), random_state=0), flatten, Ridge(alpha=1e-6))
    pipe.fit(data, y)
    assert pipe.predict(data).shape == (len(data),)
    assert pipe.score(data, y) > 0.5


def test_grid_search_picks_the_planted_number_of_parts(data):
    grid = GridSearchCV(
        tp.Tucker2((None, 1), random_state=0),
        {"rank": [(None, 2), (None, 4)], "solver": ["hals"]},
        cv=3,
    )
    grid.fit(data)
    assert grid.best_params_["rank"] == (None, 4)
    assert grid.best_estimator_.P_.shape == (16, 4)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_set_params_then_fit_uses_the_new_values(data):
    est = tp.Tucker2((None, 2)).set_params(rank=(None, 3), max_iter=2, tol=0.0)
    with pytest.warns(tp.ConvergenceWarning):
        est.fit(data)
    assert est.n_iter_ == 2 and est.P_.shape[1] == 3
