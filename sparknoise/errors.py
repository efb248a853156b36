"""The sparknoise exception hierarchy.

Every error raised for bad input or bad configuration is a :class:`SparkNoiseError`,
and its message names the column (or option), the problem and the fix.
"""

from __future__ import annotations


class SparkNoiseError(Exception):
    """Base class of every error sparknoise raises on purpose."""


class ConfigError(SparkNoiseError, ValueError):
    """An argument or configuration value is invalid (unknown filter name, bad fraction, ...)."""


class InputError(SparkNoiseError, ValueError):
    """The input table breaks a rule: a missing column, a wrong type, a null or NaN, a probability
    outside [0, 1] or a row not summing to 1, a label outside the classes, a duplicate id. The message
    names the column, the count and an example, and the fix."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column
