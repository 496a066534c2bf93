"""Update and condition expressions: every attribute name goes through ExpressionAttributeNames
(names like `status` or `type` are reserved words, and attribute names here carry ids)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from inventory.adapters.dynamodb.codec import to_ddb


class Update:
    """Builds one UpdateItem call, and the conditions of it, on one set of placeholders."""

    def __init__(self) -> None:
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []
        self._delete: list[str] = []
        self.names: dict[str, str] = {}
        self._placeholders: dict[str, str] = {}
        self._simple: dict[tuple[type, Any], str] = {}
        self.values: dict[str, Any] = {}

    def name(self, *path: str) -> str:
        """The placeholder path for an attribute path (one placeholder per distinct name)."""
        placeholders = []
        for part in path:
            if part not in self._placeholders:
                self._placeholders[part] = f"#n{len(self._placeholders)}"
                self.names[self._placeholders[part]] = part
            placeholders.append(self._placeholders[part])
        return ".".join(placeholders)

    def value(self, value: Any) -> str:
        """The placeholder of a value (one per distinct number or string)."""
        simple = type(value) in (int, str)
        if simple and (type(value), value) in self._simple:
            return self._simple[(type(value), value)]
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        if simple:
            self._simple[(type(value), value)] = placeholder
        return placeholder

    # ------------------------------------------------------------ actions
    def set(self, attr: str, value: Any, *, if_absent: bool = False) -> Update:
        name = self.name(attr)
        expr = f"if_not_exists({name}, {self.value(value)})" if if_absent else self.value(value)
        self._set.append(f"{name} = {expr}")
        return self

    def set_path(self, path: Sequence[str], value: Any) -> Update:
        self._set.append(f"{self.name(*path)} = {self.value(value)}")
        return self

    def set_expression(self, attr: str, expression: str) -> Update:
        """SET attr = an expression of this update's placeholders (the item's values before the write)."""
        self._set.append(f"{self.name(attr)} = {expression}")
        return self

    def copy(self, attr: str, source: str) -> Update:
        """SET attr = source, in the same write (the value as it is when the write applies)."""
        self._set.append(f"{self.name(attr)} = {self.name(source)}")
        return self

    def increment(self, attr: str, by: int = 1) -> Update:
        """ADD: an absent attribute counts as 0."""
        self._add.append(f"{self.name(attr)} {self.value(by)}")
        return self

    def remove(self, *attrs: str) -> Update:
        """REMOVE each attribute named (top-level names: a name with a dot is one name)."""
        self._remove += [self.name(attr) for attr in attrs]
        return self

    def remove_path(self, path: Sequence[str]) -> Update:
        """REMOVE a member of a map (absent: nothing to remove)."""
        self._remove.append(self.name(*path))
        return self

    def add_to_set(self, attr: str, members: Collection[str]) -> Update:
        self._add.append(f"{self.name(attr)} {self.value(set(members))}")
        return self

    def delete_from_set(self, attr: str, members: Collection[str]) -> Update:
        self._delete.append(f"{self.name(attr)} {self.value(set(members))}")
        return self

    # ------------------------------------------------------------ conditions
    def exists(self, attr: str) -> str:
        return f"attribute_exists({self.name(attr)})"

    def absent(self, attr: str) -> str:
        return f"attribute_not_exists({self.name(attr)})"

    def equals(self, attr: str, value: Any) -> str:
        return f"{self.name(attr)} = {self.value(value)}"

    def is_in(self, attr: str, values: Iterable[Any]) -> str:
        name = self.name(attr)
        return f"{name} IN ({', '.join(self.value(v) for v in values)})"

    # ------------------------------------------------------------ the request
    def expression(self) -> str:
        clauses = []
        for keyword, parts in (
            ("SET", self._set),
            ("REMOVE", self._remove),
            ("ADD", self._add),
            ("DELETE", self._delete),
        ):
            if parts:
                clauses.append(f"{keyword} {', '.join(parts)}")
        return " ".join(clauses)

    def request(self, table: str, key: Mapping[str, str], condition: str | None = None, **extra: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": to_ddb(key),
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
            **extra,
        }
        if self.values:
            request["ExpressionAttributeValues"] = to_ddb(self.values)
        if condition:
            request["ConditionExpression"] = condition
        return request
