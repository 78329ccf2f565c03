"""The runbook in the UI: every task's doc (`doc_md`) in one shape, so that on-call finds the
same five answers on every task of either target: what it reads, what it writes, how long
it usually takes, how to re-run it, and its common failures with their fix.

The DAG policy test checks that every task of both targets has them all.
"""
from __future__ import annotations

LABELS = ("Reads", "Writes", "Usually takes", "Re-run", "Common failures")

# How most tasks re-run: each write replaces its day (see datasets / spark_publish).
CLEAR_TO_RERUN = (
    "clear the task (or the run) in the UI; its outputs for the day are replaced, never appended."
)


def task_doc(title: str, summary: str, *, reads: str, writes: str, takes: str, rerun: str,
             failures: str) -> str:
    """A task's `doc_md`: a title, what the task does, then the five runbook answers."""
    answers = dict(zip(LABELS, (reads, writes, takes, rerun, failures)))
    lines = "\n".join(f"- **{label}:** {' '.join(text.split())}" for label, text in answers.items())
    return f"\n#### {title}\n{' '.join(summary.split())}\n\n{lines}\n"
