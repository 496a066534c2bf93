"""The `cursor` of every list: what the page it ends holds, as opaque URL-safe text.

Each list chooses what its cursor holds (a table's key, a shard and a product, a ledger position)
and checks what comes back; the encoding is this one, and a cursor that is not one of its texts
is refused the same way everywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from inventory.errors import InvalidInput


def encode_cursor(position: Any) -> str:
    """`position` (JSON data) as a cursor."""
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode().rstrip("=")


def invalid_cursor() -> InvalidInput:
    """What a list answers to a cursor it did not return."""
    return InvalidInput(
        "the cursor is not one this list returned",
        details=[{"field": "query.cursor", "code": "invalid_cursor", "message": "use next_cursor as returned"}],
    )


def decode_cursor(cursor: str) -> Any:
    """The position an `encode_cursor` text holds; `invalid_cursor()` when it is none. The list
    that reads it checks that it holds what its own cursors hold."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise invalid_cursor() from error
