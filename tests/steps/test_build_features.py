"""The features step through spark-submit: a gap in the history is refused as a data error
(no retry), with the job's own words."""
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.io.spark_runner import SparkJobDataError
from pool_classifier.steps import build_features as features


@pytest.mark.slow
def test_a_gap_in_the_history_is_a_data_error_naming_the_days(local_target):
    with atomic.write_dir(datasets.state_dir(local_target, "address_state", "2024-03-01")):
        pass  # a state of 2024-03-01 (published, empty), none after it
    with pytest.raises(SparkJobDataError, match=r"no state for 2024-03-04.*from 2024-03-02 to 2024-03-04"):
        features.build_features(local_target, "2024-03-05")


def test_unknown_settings_are_refused(local_target):
    with pytest.raises(TypeError, match="min_coinbase_output"):
        features.build_features(local_target, "2024-03-05", min_coinbase_output=3)
