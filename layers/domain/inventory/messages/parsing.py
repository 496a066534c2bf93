"""What every message parser shares: validation errors as InvalidInput, with field paths."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from inventory.errors import InvalidInput


def field_path(prefix: str, location: Sequence[str | int]) -> str:
    """('items', 3, 'quantity') under 'detail' -> 'detail.items[3].quantity'."""
    path = prefix
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def invalid(error: ValidationError, prefix: str, message: str) -> InvalidInput:
    """A validation error as InvalidInput, each problem with its field path under `prefix`."""
    details = [
        {"field": field_path(prefix, problem["loc"]), "code": problem["type"], "message": problem["msg"]}
        for problem in error.errors()
    ]
    return InvalidInput(message, details=details)
