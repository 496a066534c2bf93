"""The JSON Schema of every bus event's `detail`, in and out, generated from the message models.

    python -m inventory.messages.schemas [--check] [FOLDER]

writes one file per detail type into FOLDER (schemas/events by default), named after it
(`Shipment Applied`: shipment-applied.json); with --check, writes nothing and fails when a file
differs from what its model gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from inventory.messages import SOURCE, DetailType
from inventory.messages.published import PUBLISHED
from inventory.messages.shipment_events import DETAILS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FOLDER = Path("schemas/events")


def file_name(detail_type: DetailType) -> str:
    return detail_type.value.lower().replace(" ", "-") + ".json"


def event_schemas() -> dict[str, dict[str, Any]]:
    """Each detail type's schema, by file name."""
    schemas = {}
    for detail_type, model in DETAILS.items():
        taken = f"The detail of a `{detail_type}` event that this service takes from its bus (any source but its own)."
        schemas[file_name(detail_type)] = _schema(detail_type, model, "validation", taken)
    for detail_type, published in PUBLISHED.items():
        said = f"The detail of a `{detail_type}` event that this service publishes on its bus (source `{SOURCE}`)."
        schemas[file_name(detail_type)] = _schema(detail_type, published, "serialization", said)
    return schemas


def _schema(
    detail_type: DetailType, model: type[BaseModel], mode: Literal["validation", "serialization"], said: str
) -> dict[str, Any]:
    generated = model.model_json_schema(mode=mode, by_alias=True)
    described = f"{said} {generated.pop('description', '')}".strip()
    generated.pop("title", None)
    return {
        "$schema": DIALECT,
        "$comment": "Generated from the models of inventory.messages by `make schemas`: do not edit.",
        "title": detail_type.value,
        "description": " ".join(described.split()),
        **generated,
    }


def text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=FOLDER)
    parser.add_argument("--check", action="store_true", help="fail when a file differs from its model")
    args = parser.parse_args(argv)
    wanted = {name: text(schema) for name, schema in event_schemas().items()}
    present = {path.name: path.read_text(encoding="utf-8") for path in sorted(args.folder.glob("*.json"))}
    stale = sorted(name for name in wanted.keys() | present.keys() if wanted.get(name) != present.get(name))
    if args.check:
        for name in stale:
            print(f"{args.folder / name}: differs from its model (make schemas)", file=sys.stderr)
        return 1 if stale else 0
    args.folder.mkdir(parents=True, exist_ok=True)
    for name in stale:
        if name in wanted:
            (args.folder / name).write_text(wanted[name], encoding="utf-8")
        else:
            (args.folder / name).unlink()  # no model gives it any more
        print(f"{args.folder / name}: written" if name in wanted else f"{args.folder / name}: removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
