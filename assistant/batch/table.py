"""The results table as people read and export it: column headings, cells with their
passage links and flags, the viewer's filters and order, and rows for CSV and XLSX."""

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext

from assistant import params
from assistant.audit import trail
from assistant.batch import jobs
from assistant.batch.models import BatchJob, BatchResult, BatchRun


def column_headers(run: BatchRun) -> list[tuple[str, str]]:
    """(key in the cells, heading) per column: a field's name as its author wrote it."""
    names = {"label": gettext("Label"), "labels": gettext("Labels"), "summary": gettext("Summary")}
    columns = jobs.columns(run)
    if run.kind == BatchJob.Kind.EXTRACT:
        return [(c, c) for c in columns]
    return [(c, names.get(c, c)) for c in columns]


def shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def passage_link(passage: dict) -> str:
    """The page view with the passage marked (as citations link it)."""
    url = reverse(
        "ingestion:document_page", args=[passage["document_id"], passage.get("page") or 1]
    )
    chunk = passage.get("chunk_no")
    return f"{url}?chunk={chunk}#passage" if chunk is not None else url


def flag_text(flag: str) -> str:
    labels = {
        "not_in_passages": gettext("not in its passages"),
        "not_a_date": gettext("not a real date"),
    }
    return labels.get(flag, flag)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sort_key(value: Any) -> tuple:
    """Numbers before text, text without case, empty cells last."""
    if value is None:
        return (2, 0, "")
    if is_number(value):
        return (0, value, "")
    return (1, 0, (shown(value) or "").lower())


def filtered(user: User, run: BatchRun, get: QueryDict, columns: list[str]) -> list[BatchResult]:
    """The run's results the viewer may read now, with the table's filters and order."""
    found = jobs.results(user, run)
    if get.get("status") in BatchResult.Status.values:
        found = found.filter(status=get["status"])
    rows = list(found)
    if get.get("flagged"):
        rows = [r for r in rows if r.flagged]
    if q := get.get("q", "").strip().lower():
        rows = [
            r
            for r in rows
            if q in r.document_title.lower()
            or any(q in (shown(cell.get("value")) or "").lower() for cell in r.cells.values())
        ]
    sort = get.get("sort", "")
    if sort == "document":
        rows.sort(key=lambda r: r.document_title.lower())
    elif sort == "status":
        rows.sort(key=lambda r: r.status)
    elif sort.startswith("c") and params.is_number(sort[1:], len(columns) - 1):
        column = columns[int(sort[1:])]
        rows.sort(key=lambda r: sort_key((r.cells.get(column) or {}).get("value")))
    if get.get("desc"):
        rows.reverse()
    return rows


def table_row(result: BatchResult, columns: list[str]) -> dict:
    cells = []
    for column in columns:
        cell = result.cells.get(column) or {}
        cells.append(
            {
                "value": shown(cell.get("value")),
                "flags": [flag_text(f) for f in cell.get("flags", [])],
                "passages": [
                    {"n": p.get("n", n), "page": p.get("page") or 1, "url": passage_link(p)}
                    for n, p in enumerate(cell.get("passages", []), start=1)
                ],
            }
        )
    return {"result": result, "cells": cells}


def sort_links(get: QueryDict, headers: list[tuple[str, str]]) -> list[dict]:
    """Each heading's link sorts by it, and again in the other direction."""
    current, desc = get.get("sort", ""), bool(get.get("desc"))
    keys = [("document", gettext("Document")), ("status", gettext("Status"))]
    keys += [(f"c{n}", heading) for n, (_, heading) in enumerate(headers)]
    links = []
    for key, heading in keys:
        query = get.copy()
        query.pop("page", None)
        query["sort"] = key
        query.pop("desc", None)
        if key == current and not desc:
            query["desc"] = "1"
        order = ("descending" if desc else "ascending") if key == current else ""
        links.append({"heading": heading, "href": "?" + query.urlencode(), "order": order})
    return links


def export_rows(user: User, run: BatchRun, get: QueryDict) -> Iterator[list]:
    """The header, then a row per result: every cell as a spreadsheet shows it safely (a value
    that would start a formula gets a leading quote; documents and models write these)."""
    headers = column_headers(run)
    columns = [key for key, _ in headers]
    yield [
        gettext("Document id"),
        gettext("Document"),
        gettext("Status"),
        *[heading for _, heading in headers],
        gettext("Pages"),
        gettext("Flags"),
        gettext("Error"),
    ]
    for result in filtered(user, run, get, columns):
        cells = [result.cells.get(c) or {} for c in columns]
        pages = sorted({p.get("page") or 1 for cell in cells for p in cell.get("passages", [])})
        flags = [
            f"{column}: {flag_text(flag)}"
            for column, cell in zip(columns, cells, strict=True)
            for flag in cell.get("flags", [])
        ]
        values = [c.get("value") for c in cells]
        row = [
            result.document_id,
            result.document_title,
            result.get_status_display(),
            *[v if is_number(v) else shown(v) for v in values],
            ", ".join(map(str, pages)),
            "; ".join(flags),
            result.error,
        ]
        yield [trail.cell(v) for v in row]
