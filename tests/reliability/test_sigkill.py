"""A DAG run killed with SIGKILL while build_features writes: readers never see a partial
output, and the re-run completes with the same outputs as before.

Played by the `shuffled` lane of scenarios.py after its backfill (`kill_while_writing`):
`airflow dags test` of the last day, in its own process group; the lane polls for the Spark
job's new version folder (`dt=<ds>/v=<id>/`, not yet named by the day's pointer) to fill,
then kills the whole group (Airflow, spark-submit, the JVM) at once. A reader thread checks
every day folder all along.
"""
from __future__ import annotations

import signal

import pytest

from tests.reliability.scenarios import KILL_DAY, WATCHED, assert_same_as_reference

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_a_run_killed_while_writing_leaves_no_partial_output_and_the_rerun_completes(sequential, shuffled):
    reference = sequential.record("reference")
    kill = shuffled.record("kill")
    assert_same_as_reference(reference, kill["before"], days=[KILL_DAY])

    assert kill["killed_while"], "the run ended before build_features wrote: nothing was killed"
    assert kill["returncode"] == -signal.SIGKILL
    assert kill["reads"] > 0
    assert kill["partial"] == [], kill["partial"]

    # What the kill left: each day whole (the previous version in force) or absent, and the
    # killed writer's version folder, which no pointer names: hidden from every reader.
    for name in WATCHED:
        got = kill["after_kill"].get((KILL_DAY, name))
        assert got is None or got["content"] == reference[(KILL_DAY, name)]["content"], name
    assert kill["unpublished_versions_left"], "expected the killed writer's unpublished version"
    assert all(name.startswith("v=") for name in kill["unpublished_versions_left"])

    # The re-run completed and left the same outputs as the reference run.
    now = shuffled.record("after_kill_rerun")
    assert len(now) == len(shuffled.record("outputs_after_kill_rerun"))
    assert_same_as_reference(reference, now, days=[KILL_DAY])
