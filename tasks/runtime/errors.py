"""The project's error types: what a user can fix, as opposed to a bug.

The command lines (``clsbench``, ``python -m clsbench.clip_baselines``) print a :class:`ClsbenchError` as
one line with exit status 2 and let every other exception show its traceback, so a real bug is never
dressed up as a usage error. Each error type below also keeps the builtin it used to be (``KeyError``,
``ValueError``), so code that catches those keeps working.
"""

from __future__ import annotations


class ClsbenchError(Exception):
    """An error the user can act on: the message names the input, file or setting and what to do."""


class UnknownNameError(ClsbenchError, KeyError):
    """A dataset, task, model or setting name that is not known; the message lists the choices."""

    def __str__(self) -> str:  # KeyError quotes its message
        return str(self.args[0]) if self.args else ""


class BadSettingError(ClsbenchError, ValueError):
    """A setting outside the values it can take; the message names the setting and the allowed values."""
