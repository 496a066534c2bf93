"""Cold-import time of each handler (`python -X importtime`), against a bare `import boto3`.

Each figure is the median of several fresh interpreters importing the handler module the way
Lambda does (PYTHONPATH = the function's folder and the layer), with the environment the template
gives that function (a handler reads its settings at its cold start, so they are part of it).

    python -m bench.cold_import [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S.*)$")


def cumulative_us(code_dir: Path | None, module: str, variables: dict[str, str] | None = None) -> int:
    env = {
        **os.environ,
        **(variables or {}),
        "PYTHONPATH": os.pathsep.join(str(p) for p in (code_dir, ROOT / "layers/domain") if p),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        cwd=code_dir or ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        match = LINE.search(line)
        if match and match.group(2).strip() == module:
            return int(match.group(1))
    raise RuntimeError(f"no import time for {module}")


def median_ms(code_dir: Path | None, module: str, runs: int, variables: dict[str, str] | None = None) -> float:
    return statistics.median(cumulative_us(code_dir, module, variables) for _ in range(runs)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    baseline = median_ms(None, "boto3", args.runs)
    print(f"{'handler':<20} {'import ms':>10} {'x boto3':>8}")
    print(f"{'import boto3':<20} {baseline:>10.1f} {1.0:>8.2f}")
    functions = Template(ROOT / "template.yaml", region="eu-west-1").functions().values()
    for spec in sorted(functions, key=lambda spec: spec.code_dir.name):
        took = median_ms(spec.code_dir, "app", args.runs, spec.environment)
        print(f"{spec.code_dir.name:<20} {took:>10.1f} {took / baseline:>8.2f}")


if __name__ == "__main__":
    main()
