"""The error a tool raises for a problem the model should hear about (a bad time zone, a
division by zero): its message goes back to the model as the tool's output."""

from __future__ import annotations


class ToolError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
