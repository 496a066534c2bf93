"""Each function's deployment settings: a typed model per function, holding only the variables that
template.yaml gives that function, each required, read and validated once, at its cold start (a
function deployed without one fails to start, rather than at its first use). The domain never reads
`os.environ`; `wiring.py` builds the services from these models.

A plain pydantic model over `os.environ` (pydantic-settings would cost every cold start its import
for nothing more): field `table_name` is the variable `TABLE_NAME`.

Here: the base of every model, TableSettings (the functions that only use the table) and reading
them; each other function's model in a module of its own beside it (`master_switch`,
`stock_imports`, `stock_import_worker`, `shipment_events`, `outbox_relay`), so that a function
builds its own model and no other at its cold start.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=str.upper,
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,  # what is wrong, never the values
    )

    @classmethod
    def from_environ(cls) -> Self:
        """Only the model's own variables are read: nothing else of the environment (credentials)
        goes near a validation error."""
        variables = cls.variables()
        return cls.model_validate({name: value for name, value in os.environ.items() if name in variables})

    @classmethod
    def variables(cls) -> set[str]:
        """The environment variables the model reads."""
        return {field.alias or name.upper() for name, field in cls.model_fields.items()}


class TableSettings(FunctionSettings):
    """The functions that only use the table: locations, stock, safety_stock, allocations,
    abandoned_requests."""

    table_name: str = Field(min_length=3)


S = TypeVar("S", bound=FunctionSettings)


def settings_of(model: type[S]) -> S:
    """The function's settings, read from its environment the first time (its cold start)."""
    settings = read(model)
    assert isinstance(settings, model)
    return settings


@cache
def read(model: type[FunctionSettings]) -> FunctionSettings:
    return model.from_environ()
