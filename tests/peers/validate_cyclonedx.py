"""Validates a CycloneDX 1.5 JSON document against the official schema.

Usage: validate_cyclonedx.py FILE

Uses PyPI `cyclonedx-python-lib` (with its `json-validation` extra), which ships the
CycloneDX schema files, in strict mode (no properties beyond the schema's). Exits 0 when
FILE is valid, 1 with every violation on stderr when it is not.
"""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        data = f.read()
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(data, all_errors=True)
    if errors is None:
        return 0
    for error in errors:
        # `error.data` is jsonschema's ValidationError; its str() dumps the whole schema.
        detail = getattr(error, "data", None)
        where = getattr(detail, "json_path", "?")
        message = getattr(detail, "message", str(error))
        print(f"invalid CycloneDX 1.5 at {where}: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
