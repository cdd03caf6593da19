"""What a job asks for, as a JSON schema vLLM decodes under (structured outputs), and the check
of what comes back. Only the small subset of JSON Schema written here is used, so it is
validated here too: vLLM's grammar backends and this check read the same few keywords."""

import re
from typing import Any

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

FIELD_TYPES = ("text", "number", "date", "yes_no", "choice")
LENGTHS = {"short": 120, "medium": 250, "long": 450}  # max_tokens of a summary
MAX_LABELS, MAX_FIELDS, MAX_CHOICES = 50, 30, 50
MAX_TEXT = 300  # characters of an extracted text or label: a runaway string ends here
DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MAX_SOURCES = 3
# Bounded: a small model otherwise counts on (1, 2, 3, ... 40) until max_tokens cuts it off.
SOURCES = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1, "maximum": 20},
    "maxItems": MAX_SOURCES,
}


class BadSpec(ValueError):
    """The job cannot be saved or run; the message is shown to its author."""


# Whole sentences, so that each language can word them: not "Every %(what)s ...".
NEEDS_A_NAME = {
    "label": gettext_lazy("Every label needs a name."),
    "field": gettext_lazy("Every field needs a name."),
    "choice": gettext_lazy("Every choice needs a name."),
}
SAME_NAME = {
    "labels": gettext_lazy("Two labels have the same name."),
    "fields": gettext_lazy("Two fields have the same name."),
}


def _name(value: Any, what: str) -> str:
    name = " ".join(str(value or "").split())[:100]
    if not name:
        raise BadSpec(str(NEEDS_A_NAME[what]))
    return name


def _unique(names: list[str], what: str) -> None:
    if len({n.lower() for n in names}) != len(names):
        raise BadSpec(str(SAME_NAME[what]))


def clean_spec(kind: str, spec: dict) -> dict:
    """The spec as stored: names trimmed, defaults filled; BadSpec when it cannot run."""
    if kind == "classify":
        labels = [
            {"name": _name(x.get("name"), "label"), "description": str(x.get("description") or "")}
            for x in spec.get("labels") or []
        ]
        if not 2 <= len(labels) <= MAX_LABELS:
            raise BadSpec(gettext("Give between 2 and %(n)s labels.") % {"n": MAX_LABELS})
        _unique([label["name"] for label in labels], "labels")
        return {"labels": labels, "multi": bool(spec.get("multi"))}
    if kind == "extract":
        fields = []
        for field in spec.get("fields") or []:
            name, kind_of = _name(field.get("name"), "field"), field.get("type", "text")
            if kind_of not in FIELD_TYPES:
                raise BadSpec(gettext("Unknown field type %(type)s.") % {"type": kind_of})
            choices = [_name(c, "choice") for c in field.get("choices") or []]
            if kind_of == "choice" and not 2 <= len(choices) <= MAX_CHOICES:
                raise BadSpec(gettext("Field %(name)s needs 2 choices or more.") % {"name": name})
            description = str(field.get("description") or "")[:500]
            fields.append(
                {"name": name, "type": kind_of, "description": description,
                 "choices": choices if kind_of == "choice" else []}
            )  # fmt: skip
        if not 1 <= len(fields) <= MAX_FIELDS:
            raise BadSpec(gettext("Give between 1 and %(n)s fields.") % {"n": MAX_FIELDS})
        _unique([f["name"] for f in fields], "fields")
        return {"fields": fields}
    if kind == "summarise":
        length = spec.get("length") or "short"
        if length not in LENGTHS:
            raise BadSpec(gettext("Length must be short, medium or long."))
        return {"length": length, "audience": str(spec.get("audience") or "")[:200].strip()}
    raise BadSpec(gettext("Unknown job type %(kind)s.") % {"kind": kind})


def columns(kind: str, spec: dict) -> list[str]:
    """The result table's columns, one cell each per document."""
    if kind == "classify":
        return ["labels" if spec["multi"] else "label"]
    if kind == "extract":
        return [f["name"] for f in spec["fields"]]
    return ["summary"]


def max_tokens(kind: str, spec: dict) -> int:
    """Enough for a full answer and not much more: an answer that runs away (a number whose
    digits never end) is cut off soon instead of holding a slot of the batch for long."""
    if kind == "summarise":
        return LENGTHS[spec["length"]] + 60
    if kind == "extract":
        need = 20 + sum(100 if f["type"] == "text" else 30 for f in spec["fields"])
        return min(need, settings.BATCH_MAX_TOKENS)
    return settings.BATCH_MAX_TOKENS


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def value_schema(field: dict) -> dict:
    kind = field["type"]
    if kind == "number":
        return nullable({"type": "number"})
    if kind == "date":
        return nullable({"type": "string", "pattern": DATE})
    if kind == "yes_no":
        return nullable({"enum": ["yes", "no"]})
    if kind == "choice":
        return nullable({"enum": field["choices"]})
    return nullable({"type": "string", "maxLength": MAX_TEXT})


def strict_object(properties: dict) -> dict:
    # strict mode: every property required, nothing else allowed.
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def json_schema(kind: str, spec: dict) -> dict:
    """The schema of one document's answer. Every value comes with `sources`: the numbers of
    the passages it was read from."""
    if kind == "classify":
        names = [label["name"] for label in spec["labels"]]
        if spec["multi"]:
            chosen: dict = {"type": "array", "items": {"enum": names}}
            return strict_object({"labels": chosen, "sources": SOURCES})
        return strict_object({"label": {"enum": names}, "sources": SOURCES})
    if kind == "extract":
        return strict_object(
            {
                f["name"]: strict_object({"value": value_schema(f), "sources": SOURCES})
                for f in spec["fields"]
            }
        )
    limit = LENGTHS[spec["length"]] * 4  # characters: about four a token
    return strict_object({"summary": {"type": "string", "maxLength": limit}, "sources": SOURCES})


def errors(schema: dict, value: Any, at: str = "$") -> list[str]:
    """Where `value` breaks `schema` (the subset above); empty when it conforms."""
    if "anyOf" in schema:
        if any(not errors(option, value, at) for option in schema["anyOf"]):
            return []
        return [f"{at}: matches none of the allowed forms"]
    if "enum" in schema:
        return [] if value in schema["enum"] else [f"{at}: {value!r} is not one of the choices"]
    kind = str(schema.get("type"))
    checks = {
        "null": value is None,
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if not checks.get(kind, False):
        return [f"{at}: expected {kind}"]
    if kind == "string":
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return [f"{at}: does not match {schema['pattern']}"]
        if len(value) > schema.get("maxLength", len(value)):
            return [f"{at}: longer than {schema['maxLength']} characters"]
    if kind in ("number", "integer") and not schema.get("minimum", value) <= value <= schema.get(
        "maximum", value
    ):
        return [f"{at}: {value} is out of range"]
    if kind == "array":
        if len(value) > schema.get("maxItems", len(value)):
            return [f"{at}: more than {schema['maxItems']} items"]
        return [
            e for i, item in enumerate(value) for e in errors(schema["items"], item, f"{at}[{i}]")
        ]
    if kind == "object":
        found = [f"{at}: missing {name}" for name in schema["required"] if name not in value]
        found += [f"{at}: unexpected {name}" for name in value if name not in schema["properties"]]
        for name, sub in schema["properties"].items():
            if name in value:
                found += errors(sub, value[name], f"{at}.{name}")
        return found
    return []
