"""scikit-learn's estimator checks, run from the first commit on (STYLE.md)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from somvq import KSOM

#: Checks KSOM is expected to fail, each with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_clustering": (
        "check_clustering requires every label between min and max to be used. A SOM's K "
        "units are a fixed grid, and units lying between data clusters (the map's "
        "interpolating units) legitimately win no sample, so labels are not consecutive; "
        "KSOM has no n_clusters parameter for the check to set to the number of blobs."
    ),
}


def _instances():
    # Small maps keep the checks fast; every algorithm is checked.
    return [
        KSOM(grid=(3, 3), n_epochs=3, random_state=0),
        KSOM(grid=(2, 3), algorithm="minibatch", batch_size=8, n_epochs=2, random_state=0),
        KSOM(grid=(2, 2), algorithm="online", n_epochs=2, random_state=0),
    ]


@parametrize_with_checks(_instances(), expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
