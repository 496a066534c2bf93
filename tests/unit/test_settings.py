"""Each function's settings model holds exactly the variables template.yaml gives that function,
every one required, and a function deployed without one fails at its cold start."""

from __future__ import annotations

import ast
import importlib

import pytest
from pydantic import ValidationError

from inventory import settings
from tests.conftest import ROOT, load_handler, template_environment
from tests.unit.test_template import FUNCTIONS, GLOBALS

POWERTOOLS = "POWERTOOLS_"  # Powertools' own variables (Globals): no model of ours reads them


def folder(function: str) -> str:
    return str(FUNCTIONS[function]["Properties"]["CodeUri"]).strip("/").rsplit("/", 1)[-1]


def settings_model(function: str) -> type[settings.FunctionSettings] | None:
    """The model that functions/<folder>/app.py reads at its cold start (`settings_of(Model)`)."""
    tree = ast.parse((ROOT / "functions" / folder(function) / "app.py").read_text())
    read = {
        node.args[0].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "settings_of"
        and isinstance(node.args[0], ast.Name)
    }
    assert len(read) <= 1, f"{function} reads {read}: one model per function"
    if not read:
        return None
    name = read.pop()
    # from the module of inventory.settings that the handler imports it from
    (module,) = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("inventory.settings")
        and name in {alias.name for alias in node.names}
    }
    model = getattr(importlib.import_module(module), name)
    assert issubclass(model, settings.FunctionSettings)
    return model


def provided(function: str) -> set[str]:
    variables = {
        **(GLOBALS.get("Environment") or {}).get("Variables", {}),
        **(FUNCTIONS[function]["Properties"].get("Environment") or {}).get("Variables", {}),
    }
    return {name for name in variables if not name.startswith(POWERTOOLS)}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_is_given_exactly_the_variables_its_settings_model_reads(function: str) -> None:
    model = settings_model(function)
    fields = model.model_fields if model else {}

    assert {name: field.is_required() for name, field in fields.items()} == dict.fromkeys(fields, True)
    assert (model.variables() if model else set()) == provided(function)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_template_values_are_valid_settings(function: str) -> None:
    model = settings_model(function)
    if model is not None:
        environment = template_environment(folder(function))
        model.model_validate({name: environment[name] for name in model.variables()})


def test_a_function_deployed_without_a_variable_fails_at_its_cold_start(
    cold_start: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stock imports function used to start without IMPORT_QUEUE_URL and fail at its first send."""
    for name, value in template_environment("stock_imports").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IMPORT_QUEUE_URL")

    with pytest.raises(ValidationError) as refused:
        load_handler("stock_imports")

    assert [error["loc"] for error in refused.value.errors()] == [("IMPORT_QUEUE_URL",)]
    assert "local-importbucket" not in str(refused.value)  # what is wrong, never the values


def test_settings_are_read_once_per_cold_start(cold_start: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "first")
    first = settings.settings_of(settings.TableSettings)
    monkeypatch.setenv("TABLE_NAME", "second")

    assert settings.settings_of(settings.TableSettings) is first
    assert first.table_name == "first"
