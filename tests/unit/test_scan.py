"""The security scan (`make scan`): checkov over template.yaml fails the build on any check that is
neither fixed nor waived, and every waiver in the template gives its reason there and in the README."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"
RESOURCE = re.compile(r"^  ([A-Za-z0-9]+):\s*$")
WAIVER = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")


def waivers(text: str) -> list[tuple[str, str, str]]:
    """(resource, check, reason) of every inline skip comment, by the resource it sits in."""
    found = []
    resource = ""
    for line in text.splitlines():
        if match := RESOURCE.match(line):
            resource = match.group(1)
        elif match := WAIVER.search(line):
            found.append((resource, match.group(1), (match.group(2) or "").strip()))
    return found


TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()
WAIVERS = waivers(TEMPLATE_TEXT)


def scan(template: Path) -> tuple[int, dict]:
    """checkov as `make scan` runs it (the same configuration, offline), with a JSON report."""
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(ROOT / ".checkov.yaml"), "--file", str(template), "--output", "json"],
        capture_output=True,
        text=True,
        cwd=template.parent,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        timeout=120,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_every_waiver_says_why_in_a_sentence() -> None:
    assert WAIVERS
    for resource, check, reason in WAIVERS:
        assert resource, f"{check} is waived outside any resource"
        assert len(reason.split()) >= 8, f"{resource} waives {check} without a reason"


def test_the_readme_lists_every_waived_check_in_its_deploy_section() -> None:
    readme = (ROOT / "README.md").read_text()
    deploy = readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)`", deploy, re.MULTILINE))  # the table's first column

    assert {check for _, check, _ in WAIVERS} - rows == set()


@pytest.mark.skipif(not CHECKOV.exists(), reason="no .venv-scan (make test installs it: make .venv-scan/.installed)")
def test_a_resource_that_breaks_a_check_fails_the_scan_and_every_waiver_is_used(tmp_path: Path) -> None:
    # Given the template with one more queue, stored unencrypted, and no waiver for it
    broken = TEMPLATE_TEXT.replace(
        "\nOutputs:\n",
        "\n  PlainQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n      SqsManagedSseEnabled: false\n\nOutputs:\n",
    )
    assert broken != TEMPLATE_TEXT
    (tmp_path / "template.yaml").write_text(broken)

    # When the scan runs
    exit_code, report = scan(tmp_path / "template.yaml")

    # Then it fails on that queue alone: everything else in the template passes or is waived
    assert exit_code == 1
    failed = {(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]}
    assert failed == {("CKV_AWS_27", "AWS::SQS::Queue.PlainQueue")}
    # and every waiver in the template skips a check that would fail there (none is left over)
    skipped = {(check["resource"].split(".")[-1], check["check_id"]) for check in report["results"]["skipped_checks"]}
    assert skipped == {(resource, check) for resource, check, _ in WAIVERS}
