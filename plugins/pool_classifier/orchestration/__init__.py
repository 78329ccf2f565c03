"""Airflow wiring: the only package of the project that imports Airflow.

`tasks_for(target)` (the daily DAG) and `hourly_tasks_for(target)` (the hourly one) give the current target's task builder (`local.Tasks` or `gcp.Tasks`,
both `tasks.PipelineTasks`): one method per step, under the same task ids on both targets.
Also here: the on-call alerts (`alerts.py`), the runbook's doc format (`runbook.py`) and the
gcp target's Google operators (`gcp_operators.py`).
"""
from __future__ import annotations

import importlib


def tasks_for(target):
    """The builder of `target`'s tasks (the module its `tasks` names)."""
    return importlib.import_module(f"pool_classifier.orchestration.{target.tasks}").Tasks(target)


def hourly_tasks_for(target):
    """The builder of `target`'s tasks of the hourly DAG (`HourlyTasks` of the same module)."""
    return importlib.import_module(f"pool_classifier.orchestration.{target.tasks}").HourlyTasks(target)
