"""samconfig.toml: `sam deploy --config-env production` is the whole deploy, with values the
template accepts."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.unit.test_template import RESOURCES, ROOT, TEMPLATE

CONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
ENVIRONMENTS = ["default", "production"]


def deploy(environment: str) -> dict[str, Any]:
    parameters: dict[str, Any] = CONFIG[environment]["deploy"]["parameters"]
    return parameters


def pairs(values: list[str]) -> dict[str, str]:
    """`Key=Value` entries (SAM CLI's list form of parameter_overrides and tags)."""
    return dict(value.split("=", 1) for value in values)


def test_there_is_a_default_and_a_production_environment_with_stacks_of_their_own() -> None:
    assert CONFIG["version"] == 0.1
    names = [deploy(environment)["stack_name"] for environment in ENVIRONMENTS]

    assert len(set(names)) == len(names)
    assert deploy("production")["stack_name"] == "inventory-master"  # as docs/runbook.md assumes


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_deploy_needs_nothing_more_than_the_configuration(environment: str) -> None:
    settings = deploy(environment)

    assert settings["region"]
    assert settings["resolve_s3"] is True  # no artifact bucket to name
    # The functions' roles need CAPABILITY_IAM; named IAM resources or nested applications would need more.
    assert settings["capabilities"] == "CAPABILITY_IAM"
    assert not any("RoleName" in r.get("Properties", {}) for r in RESOURCES.values())
    assert not any(r["Type"] == "AWS::Serverless::Application" for r in RESOURCES.values())
    assert pairs(settings["tags"])["environment"] == environment.replace("default", "test")
    assert pairs(settings["tags"])["service"] == "inventory-master"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_parameter_it_sets_exists_in_the_template_and_takes_the_value(environment: str) -> None:
    declared = TEMPLATE["Parameters"]
    overrides = pairs(deploy(environment)["parameter_overrides"])

    assert set(overrides) - set(declared) == set()
    for name, value in overrides.items():
        spec = declared[name]
        if spec["Type"] == "Number":
            number = float(value)
            assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), name
        if "AllowedValues" in spec:
            assert value in {str(allowed) for allowed in spec["AllowedValues"]}, name


def test_production_confirms_its_change_set_and_keeps_a_year_of_logs() -> None:
    production = deploy("production")

    assert production["confirm_changeset"] is True
    assert pairs(production["parameter_overrides"])["LogRetentionDays"] == "365"


def test_the_readmes_deploy_uses_the_production_configuration() -> None:
    deploy_section = (ROOT / "README.md").read_text().split("\n## Deploy\n", 1)[1]

    assert "sam deploy --config-env production" in deploy_section
    assert "--guided" not in deploy_section.split("\n## ", 1)[0]
