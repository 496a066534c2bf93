"""Each rule is written in one place, and the code stays in modules a reader can hold.

Read from the source, the way a reviewer greps for it: every id pattern, limit, stock location name
and the event source is written in `inventory/types.py` or `inventory/messages` and imported from
there; cursors are encoded only by `inventory/cursor.py`, backoff jitter drawn only by
`inventory/backoff.py`, key strings built only by `adapters/dynamodb/keys.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inventory.messages import SOURCE
from inventory.types import DEFAULT_STOCK_LOCATIONS

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "domain" / "inventory"
KEYS = LAYER / "adapters" / "dynamodb" / "keys.py"
TYPES = LAYER / "types.py"
MAX_MODULE_LINES = 500
# What only keys.py may write into a string: the prefixes of the key table (docs/data-design.md).
KEY_MARKERS = ("LOC#", "IMP#", "EVT#", "LED#", "P#", "ALLOC#", "IMPORT#", "COUNT#", "EVENT#", "OUTBOX#", "ABANDON#")
KEY_VALUES = {"LOCATION", "LOCATIONS", "CONFIG", "STOCK_LOCATIONS"}
# What only types.py may write: the text of an id pattern or of the control characters' class.
PATTERN_MARKERS = ("A-Za-z0-9", "\\x00-\\x1f", "s3://[")
CONSTRAINTS = {"ge", "gt", "le", "lt", "min_length", "max_length"}


def modules(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def code_of_the_service() -> list[Path]:
    return modules(LAYER, ROOT / "functions")


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """Every string written in the code, docstrings left out (they describe the keys, not build them)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def found(paths: list[Path], test: Callable[[str], bool]) -> list[str]:
    """`path:line: text` of every string for which `test(text)` holds."""
    hits = []
    for path in paths:
        for node in strings(ast.parse(path.read_text())):
            if test(node.value):
                hits.append(f"{name(path)}:{node.lineno}: {node.value!r}")
    return hits


def test_no_module_of_the_layer_or_of_a_function_is_over_500_lines() -> None:
    long = {name(p): n for p in code_of_the_service() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}

    assert long == {}


def test_no_key_string_is_built_outside_the_keys_module() -> None:
    """Not in the layer, the functions, the local stack, the benchmarks or the tests: they take keys
    (and key prefixes) from keys.py, whose table test_product_keys.py holds to docs/data-design.md."""
    everywhere = modules(LAYER, ROOT / "functions", ROOT / "local", ROOT / "bench", ROOT / "tests")
    others = [p for p in everywhere if p not in (KEYS, Path(__file__).resolve())]

    def is_key(text: str) -> bool:
        return text in KEY_VALUES or any(marker in text for marker in KEY_MARKERS)

    assert found(others, is_key) == []


def test_id_patterns_and_the_control_characters_are_written_only_in_the_types_module() -> None:
    others = [p for p in code_of_the_service() if p != TYPES]

    assert found(others, lambda text: any(marker in text for marker in PATTERN_MARKERS)) == []


def test_stock_location_names_are_written_only_in_the_types_module() -> None:
    others = [p for p in code_of_the_service() if p != TYPES]

    assert found(others, lambda text: text in DEFAULT_STOCK_LOCATIONS) == []


def test_the_event_source_is_written_once() -> None:
    hits = found(code_of_the_service(), lambda text: text == SOURCE)

    assert [hit.split(":")[0] for hit in hits] == [name(LAYER / "messages" / "__init__.py")]


def test_the_parsers_name_their_limits_rather_than_write_them() -> None:
    """Every bound of a field or a query parameter that the HTTP layer, the bus parser and the file
    parser check is a name, defined once (most in types.py), so that a limit such as the products of
    an allocation has one value wherever it applies; 0 and 1 are not limits."""
    parsers = [*modules(LAYER / "api", LAYER / "messages"), LAYER / "import_rows.py"]
    written = []
    for path in parsers:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg in CONSTRAINTS
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, int)
                        and value.value > 1
                    ):
                        written.append(f"{name(path)}:{node.lineno}: {keyword.arg}={value.value}")

    assert written == []


@pytest.mark.parametrize(
    ("module", "attribute", "owner"),
    [
        ("base64", "urlsafe_b64encode", "cursor.py"),
        ("base64", "urlsafe_b64decode", "cursor.py"),
        ("random", "random", "backoff.py"),
    ],
)
def test_cursors_are_encoded_and_backoff_is_jittered_in_one_module(module: str, attribute: str, owner: str) -> None:
    users = sorted(
        {
            name(path)
            for path in code_of_the_service()
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute)
            and node.attr == attribute
            and isinstance(node.value, ast.Name)
            and node.value.id == module
        }
    )

    assert users == [name(LAYER / owner)]


# The stock arithmetic and the ledger's rules do no I/O: they import the models, the types, each
# other and the standard library's pure parts, so a unit test can hold them to SPEC.md alone.
PURE_MODULES = ("figures.py", "ledger.py")
PURE_PROJECT_IMPORTS = {"inventory.figures", "inventory.ledger", "inventory.types", "inventory.errors"}
IO_MODULES = {"os", "io", "socket", "subprocess", "urllib", "http", "shutil", "pathlib", "time", "random"}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_the_stock_arithmetic_does_no_io(name: str) -> None:
    import sys

    tree = ast.parse((LAYER / name).read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    project = {module for module in imported if module.split(".")[0] == "inventory"}
    others = imported - project
    assert {m for m in project if not m.startswith("inventory.models")} <= PURE_PROJECT_IMPORTS
    assert all(m.split(".")[0] in sys.stdlib_module_names for m in others), others
    assert not {m.split(".")[0] for m in others} & IO_MODULES
