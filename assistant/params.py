"""Numbers the client sends in query strings and forms (ids, chunk numbers, days).

Only ASCII digits within a 64-bit column count: str.isdigit() also accepts "²", which int()
refuses, and a longer number overflows the database or the vector store into a 500."""

from collections.abc import Iterable

from django.core.exceptions import BadRequest

MAX = 2**63 - 1


def is_number(value: str, maximum: int = MAX) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= maximum


def number(value: str) -> int:
    """The number, or BadRequest (a 400): a well-formed page never sends anything else."""
    if not is_number(value):
        raise BadRequest(f"{value[:30]!r} is not a number.")
    return int(value)


def numbers(values: Iterable[str]) -> list[int]:
    return [number(v) for v in values]
