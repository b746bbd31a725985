"""Domain errors.

ValueError
 ├── InvalidEvent   an input event breaks the contract; ``reason`` is a dead-letter code
 └── RulesError     rules.toml is invalid; the message names the file and line
"""

from __future__ import annotations


class InvalidEvent(ValueError):
    """An event that must go to the dead-letter topic with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RulesError(ValueError):
    """A rules file that must not be used; the worker refuses to start."""
