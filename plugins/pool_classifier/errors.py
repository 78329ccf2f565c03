"""Errors about the data or the request, that a retry would not fix.

Every such error subclasses `DataError`: the orchestration fails the task at once (no
retry) with the error's own message, and a Spark job that meets one prints
`<ErrorClass>: <message>` and exits with `DATA_ERROR_EXIT_CODE`, which the local runner
turns back into that error class.
"""
from __future__ import annotations

# What spark_jobs/ exit with when the data (or the order of days) is wrong: no retry helps.
DATA_ERROR_EXIT_CODE = 3


class DataError(Exception):
    """The data or the request is wrong: the message says what input, what was expected, what to do."""


class StateOrderError(DataError, RuntimeError):
    """The state of the day before is missing: days must be built in date order."""
