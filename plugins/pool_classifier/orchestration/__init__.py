"""Airflow wiring: the only package that imports Airflow (task builders per target, alerts, runbook)."""
