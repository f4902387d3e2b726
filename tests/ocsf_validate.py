#!/usr/bin/env python3
"""Validates trailproof's OCSF report against py-ocsf-models' Detection Finding model.

Usage: ocsf_validate.py REPORT.json

REPORT.json must hold a JSON array of OCSF Detection Finding objects (class_uid 2004). Each is
validated with py-ocsf-models' `DetectionFinding` in pydantic's strict mode (no type coercion:
a number where a string belongs fails, and so does a string where a number belongs), with extra
fields forbidden at every level (a misspelt or unknown attribute fails), so every field that the
model requires must be present. On top of the model, the class's fixed values are checked: the
model has defaults for class_uid and category_uid but accepts any integer for them.

Exit 0, printing `N finding(s) valid`, when every one passes; exit 1, printing the index and the
errors of each one that does not, or when the file is not a JSON array; exit 2 on bad usage.
Needs `py-ocsf-models` (0.10.0, OCSF 1.5.0) and pydantic 2.12 or later.
"""

import json
import sys

from pydantic import ValidationError
from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID

CLASS_UID = 2004
CATEGORY_UID = 2


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _json_type(value):
    """What JSON calls the type of a parsed value."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _caption(enum, value):
    """The caption of an id (`InProgress` reads as `In Progress`), or None for an unknown id."""
    try:
        name = enum(value).name
    except (TypeError, ValueError):
        return None
    return {"InProgress": "In Progress"}.get(name, name)


def consistency(item):
    """What the model lets through but OCSF's Detection Finding class fixes."""
    errors = []
    if item.get("class_uid") != CLASS_UID:
        errors.append(f"class_uid is {item.get('class_uid')!r}, not {CLASS_UID}")
    if item.get("category_uid") != CATEGORY_UID:
        errors.append(f"category_uid is {item.get('category_uid')!r}, not {CATEGORY_UID}")
    activity = item.get("activity_id")
    if isinstance(activity, int) and item.get("type_uid") != CLASS_UID * 100 + activity:
        errors.append(
            f"type_uid is {item.get('type_uid')!r}, not class_uid * 100 + activity_id"
            f" = {CLASS_UID * 100 + activity}"
        )
    metadata = item.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    if version != OCSF_VERSION:
        errors.append(f"metadata.version is {version!r}, not {OCSF_VERSION!r}")
    for text, ident, enum in (("severity", "severity_id", SeverityID), ("status", "status_id", StatusID)):
        if text in item and ident in item:
            caption = _caption(enum, item[ident])
            if caption is not None and item[text] != caption and caption != "Other":
                errors.append(f"{text} is {item[text]!r}, but {ident} {item[ident]} is {caption!r}")
    return errors


def validate(item):
    """The errors of one finding: pydantic's, then the class's own; empty when it is valid."""
    if not isinstance(item, dict):
        return [f"not a JSON object but a JSON {_json_type(item)}"]
    errors = []
    try:
        DetectionFinding.model_validate_json(json.dumps(item), strict=True, extra="forbid")
    except ValidationError as e:
        errors.append(str(e))
    errors.extend(consistency(item))
    return errors


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} REPORT.json", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"{path}: {e}")
        return 1
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        print(f"{path}: not JSON: {e}")
        return 1
    if not isinstance(data, list):
        print(f"{path}: not a JSON array but a JSON {_json_type(data)}")
        return 1
    bad = 0
    for index, item in enumerate(data):
        errors = validate(item)
        if errors:
            bad += 1
            print(f"finding {index}: invalid")
            for error in errors:
                print("  " + error.replace("\n", "\n  "))
    if bad:
        print(f"{bad} of {len(data)} finding(s) invalid")
        return 1
    print(f"{len(data)} finding(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
