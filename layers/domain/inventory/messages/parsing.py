"""What every message parser shares: validation errors as InvalidInput, with field paths."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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


def json_object(body: str) -> dict[str, Any]:
    """A queue message's body as a JSON object, or InvalidInput saying why it is not one."""
    try:
        raw: Any = json.loads(body)
    except ValueError as error:
        raise InvalidInput("the message is not JSON") from error
    if not isinstance(raw, dict):
        raise InvalidInput("the message is not a JSON object")
    return raw
