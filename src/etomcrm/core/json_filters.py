"""Attribute filters on paths inside stored TMF documents, lists included.

``relatedParty.id=X`` must match when any element of the ``relatedParty`` list has id X,
as TMF630 filtering expects. PostgreSQL's SQL/JSON path in lax mode walks through
arrays by itself; SQLite needs one ``json_each`` per list on the way, found from the
official schema.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import ColumnElement, bindparam, text

from etomcrm.core.tmf_schemas import JsonDict, TmfDocument

_names = itertools.count()


def _resolve(doc: TmfDocument, schema: JsonDict | None) -> JsonDict | None:
    seen = 0
    while schema is not None and "$ref" in schema and seen < 20:
        schema = doc.definitions.get(schema["$ref"].removeprefix("#/definitions/"))
        seen += 1
    return schema


def split_at_lists(
    doc: TmfDocument,
    definition: str,
    path: list[str],
    extensions: Mapping[str, JsonDict] | None = None,
) -> list[list[str]]:
    """Group a dotted path so each group after the first starts inside a list element.
    ``extensions`` are attributes added to the definition's own (with their schemas)."""
    groups: list[list[str]] = [[]]
    schema = _resolve(doc, doc.definitions.get(definition))
    if extensions:
        official = (schema or {}).get("properties", {})
        schema = {"type": "object", "properties": {**official, **extensions}}
    for segment in path:
        groups[-1].append(segment)
        prop = _resolve(doc, (schema or {}).get("properties", {}).get(segment))
        if prop is not None and prop.get("type") == "array":
            groups.append([])
            schema = _resolve(doc, prop.get("items"))
        else:
            schema = prop
    return groups


def _quoted(path: list[str]) -> str:
    return "$" + "".join('."' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in path)


INT64_LIMIT = 2**63


def _typed_alternatives(value: str) -> list[Any]:
    """The value as given, and as a number or boolean when it reads as one."""
    alternatives: list[Any] = [value]
    if value in ("true", "false"):
        alternatives.append(value == "true")
    else:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                # Beyond 64 bits an integer binds in neither database: compare as a float,
                # which is also how SQLite and jsonb hold such a stored number.
                whole = number.is_integer() and abs(number) < INT64_LIMIT
                alternatives.append(int(number) if whole else number)
    return alternatives


def document_path_equals(
    dialect: str,
    table: str,
    doc: TmfDocument,
    definition: str,
    path: list[str],
    value: str,
    *,
    extensions: Mapping[str, JsonDict] | None = None,
) -> ColumnElement[bool]:
    """``body`` at ``path`` (through any lists) equals ``value``."""
    n = next(_names)
    alternatives = _typed_alternatives(value)
    if dialect == "postgresql":
        # Lax mode unwraps arrays at every step.
        variables = {f"v{i}": alt for i, alt in enumerate(alternatives)}
        test = " || ".join(f"@ == ${name}" for name in variables)
        clause = text(
            f"jsonb_path_exists(CAST({table}.body AS jsonb), CAST(:jp{n} AS jsonpath), "
            f"CAST(:jv{n} AS jsonb))"
        ).bindparams(
            bindparam(f"jp{n}", f"{_quoted(path)} ? ({test})"),
            bindparam(f"jv{n}", orjson.dumps(variables).decode()),
        )
        return clause  # type: ignore[return-value]
    groups = split_at_lists(doc, definition, path, extensions)
    params: dict[str, Any] = {}
    source = f"{table}.body"
    sql, closing = "", ""
    for depth, group in enumerate(groups[:-1]):
        alias = f"j{n}_{depth}"
        params[f"p{n}_{depth}"] = _quoted(group)
        sql += f"EXISTS (SELECT 1 FROM json_each({source}, :p{n}_{depth}) AS {alias} WHERE "
        closing += ")"
        source = f"{alias}.value"
    target = source
    if groups[-1]:
        params[f"l{n}"] = _quoted(groups[-1])
        target = f"json_extract({source}, :l{n})"
    tests = []
    for i, alt in enumerate(alternatives):
        params[f"v{n}_{i}"] = int(alt) if isinstance(alt, bool) else alt
        tests.append(f"{target} = :v{n}_{i}")
    sql += "(" + " OR ".join(tests) + ")" + closing
    return text(sql).bindparams(**params)  # type: ignore[return-value]
