"""The reliability tests' fixtures. The scenarios themselves (4 generated days through
`airflow dags test`, on real files and a real Airflow DB) are played by the two lanes of
`scenarios.py`, started with the session by tests/conftest.py; these fixtures hand them over.
"""
from __future__ import annotations

import pytest

from tests.reliability.scenarios import Lanes


@pytest.fixture(scope="session")
def lanes(reliability_lanes) -> Lanes:
    assert reliability_lanes is not None, "the lanes start only when a test marked `reliability` is selected"
    return reliability_lanes


@pytest.fixture(scope="session")
def sequential(lanes):
    return lanes.sequential


@pytest.fixture(scope="session")
def shuffled(lanes):
    return lanes.shuffled
