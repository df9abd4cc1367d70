"""Progress reports from long services: a callable taking (fraction done in [0, 1], message)."""

from collections.abc import Callable

Progress = Callable[[float, str], None]


def ignore_progress(fraction: float, message: str) -> None:
    """The default reporter: a long service runs the same with nobody listening."""
