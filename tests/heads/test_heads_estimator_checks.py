"""scikit-learn's own estimator checks: all of them for the scikit-learn heads, a reduced
set for the Keras heads.

No check is expected to fail (``expected_failed_checks`` is empty). The MLP fits without
early stopping when a check's data is too small to hold out a validation split (see
MLPHead); that is what lets it pass the tiny-data checks.

Keras heads: the full suite refits them ~50 times (30-40 s each), too slow here. Run
offline (``check_estimator(KerasDenseClassifier(epochs=2, random_state=0))``, likewise
the regressor) every check passes, with two caveats: their tags say ``poor_score=True``
(the reports' learning rate 1e-4 x 10 epochs cannot learn sklearn's 150-row problems), so
the score thresholds of check_classifiers_train / check_regressors_train /
check_class_weight_classifiers are not asserted; and pandas/array-API checks skip. Here
they run the API checks below; the MultiTaskHead, whose y is (n, 3) [class, valence,
arousal], only those that do not fit (its fitting is tested in test_heads_keras.py).
"""

import warnings

import pytest
import sklearn.utils.estimator_checks as sklearn_checks
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from heads import KerasDenseClassifier, KerasDenseRegressor, LogisticHead, MLPHead, MultiTaskHead, RidgeHead

ESTIMATORS = [LogisticHead(), RidgeHead(), MLPHead(task="classify"), MLPHead(task="regress")]
EXPECTED_FAILURES: dict = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_compatible_head(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP on the checks' tiny data
        check(estimator)


WITHOUT_FIT = ["check_no_attributes_set_in_init", "check_parameters_default_constructible",
               "check_get_params_invariance", "check_set_params", "check_estimator_cloneable",
               "check_estimators_unfitted", "check_estimator_repr", "check_do_not_raise_errors_in_init_or_set_params"]
WITH_FIT = ["check_estimators_fit_returns_self", "check_fit_check_is_fitted", "check_n_features_in_after_fitting",
            "check_dont_overwrite_parameters", "check_estimators_overwrite_params",
            "check_fit_idempotent"]  # idempotent: two fits with the same random_state predict the same
KERAS_CASES = [(cls(epochs=1, random_state=0), name) for cls in (KerasDenseClassifier, KerasDenseRegressor)
               for name in WITHOUT_FIT + WITH_FIT] + [(MultiTaskHead(epochs=1), name) for name in WITHOUT_FIT]


@pytest.mark.parametrize("estimator, check_name", KERAS_CASES,
                         ids=[f"{type(e).__name__}-{n}" for e, n in KERAS_CASES])
def test_keras_heads_pass_the_api_checks(estimator, check_name):
    getattr(sklearn_checks, check_name)(type(estimator).__name__, estimator)
