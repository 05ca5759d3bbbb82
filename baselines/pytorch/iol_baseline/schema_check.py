"""A minimal JSON Schema (2020-12) validator: the keywords bench/schema/results.schema.json uses.

Same semantics as iol's C++ validator (src/iol/bench/json_schema.cpp): type (a name or a list;
"integer" is a JSON integer, booleans are not numbers), enum, const, minimum, maximum, required,
properties, additionalProperties: false, items, and local "$ref": "#/...". A keyword outside
that set raises SchemaError instead of being ignored, so a schema change cannot pass silently.
No jsonschema package needed (CI has only the standard library).
"""
import json

ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "$comment", "default", "examples"}
SUPPORTED = {"$ref", "type", "enum", "const", "minimum", "maximum", "required", "properties", "additionalProperties", "items"}
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class SchemaError(Exception):
    pass


def has_type(value, name):
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise SchemaError(f"json schema: unknown type '{name}'")


def _equal(a, b):
    # JSON equality: 1 == 1.0, but true != 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _resolve(root, ref):
    if not ref.startswith("#/"):
        raise SchemaError(f"json schema: only local $ref are supported (got '{ref}')")
    node = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"json schema: $ref '{ref}' points nowhere")
        node = node[part]
    return node


def _check(root, schema, value, pointer, errors):
    where = pointer or "/"
    unknown = set(schema) - SUPPORTED - ANNOTATIONS
    if unknown:
        raise SchemaError(f"json schema: unsupported keyword(s) {sorted(unknown)} at {where}; extend schema_check.py")
    if "$ref" in schema:
        _check(root, _resolve(root, schema["$ref"]), value, pointer, errors)
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(has_type(value, t) for t in types):
            errors.append(f"{where}: expected type {json.dumps(schema['type'])}, got {json.dumps(value)[:60]}")
            return
    if "enum" in schema and not any(_equal(option, value) for option in schema["enum"]):
        errors.append(f"{where}: {json.dumps(value)} is not one of {json.dumps(schema['enum'])}")
    if "const" in schema and not _equal(schema["const"], value):
        errors.append(f"{where}: expected {json.dumps(schema['const'])}, got {json.dumps(value)}")
    if "minimum" in schema and has_type(value, "number") and value < schema["minimum"]:
        errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and has_type(value, "number") and value > schema["maximum"]:
        errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing required key '{key}'")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _check(root, properties[key], item, f"{pointer}/{key}", errors)
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: unexpected key '{key}'")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(root, schema["items"], item, f"{pointer}/{i}", errors)


def validate(schema, value):
    """All violations of `schema` by `value`, as "pointer: message" strings; [] when valid."""
    errors = []
    _check(schema, schema, value, "", errors)
    return errors


def load_schema(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
