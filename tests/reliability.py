"""The reliability checklist (../shared/RELIABILITY.md, 37 items) as a table of the tests that
cover each item, read from the tests' docstrings ("Reliability #14, #15: ..."), so the README's
table cannot drift from the suite. `python -m tests.reliability` rewrites it in README.md;
tests/test_reliability_table.py fails when the README's copy is stale."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
ITEMS = [
    "Retrieval isolation",
    "Empty allowed set",
    "Client-supplied ids ignored",
    "Owner/intruder sweep",
    "Role matrix",
    "Revocation is immediate",
    "Deactivated user, every auth path",
    "Backends not exposed",
    "Indirect injection canary",
    "Zero-click exfiltration",
    "XSS via documents or output",
    "System prompt and secrets",
    "No cross-user memory",
    "Zero-byte files",
    "Extension/magic mismatch",
    "Size limits",
    "OOXML zip bomb",
    "XML bomb / XXE",
    "Pathological PDFs",
    "Encrypted PDFs",
    "Encodings",
    "Hostile filenames",
    "SSRF / local file via ingestion",
    "Worker SIGKILL mid-ingestion",
    "Poison pill",
    "Visibility timeout",
    "Broker outage",
    "Qdrant crash mid-upsert",
    "Restore drill",
    "LLM outage / hang",
    "Audit store unavailable → fail closed",
    "Steady load",
    "Abuse caps",
    "Deploy check in CI",
    "Header, cookie and session scan",
    "Completeness",
    "Tamper evidence",
]
TAG = re.compile(r"Reliability\s+((?:#\d+[\s,and]*)+)")


LIMIT = re.compile(r"Not (?:covered|testable) here:\s*(.+?\.)(?=\s*$|\s+[A-Z])", re.S)


def covering() -> dict[int, list[str]]:
    """Item number → the tests (file::name) whose docstring names it."""
    return {n: [test for test, _ in found] for n, found in _tagged().items()}


def _tagged() -> dict[int, list[tuple[str, str]]]:
    """Item number → (test, what its docstring says it cannot cover here) for each test."""
    found: dict[int, list[tuple[str, str]]] = {n: [] for n in range(1, len(ITEMS) + 1)}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef) or not node.name.startswith(
                ("test", "Test")
            ):
                continue
            docstring = ast.get_docstring(node) or ""
            limit = " ".join(" ".join(m[1].split()) for m in LIMIT.finditer(docstring))
            for tag in TAG.finditer(docstring):
                for n in re.findall(r"#(\d+)", tag[1]):
                    name = f"{path.relative_to(ROOT).as_posix()}::{node.name}"
                    found[int(n)].append((name, limit))
    return found


def status(found: list[tuple[str, str]]) -> str:
    """Covered when a test names the item; what a docstring says cannot be run here is shown."""
    if not found:
        return "**not covered**"
    limits = sorted({limit for _, limit in found if limit})
    return "covered" + "".join(f"; not here: {limit}" for limit in limits)


def table() -> str:
    rows = ["| # | Item | Tests | Status |", "|---|---|---|---|"]
    for n, found in _tagged().items():
        names = "<br>".join(f"`{test}`" for test, _ in found) or "none"
        rows.append(f"| {n} | {ITEMS[n - 1]} | {names} | {status(found)} |")
    return "\n".join(rows)


def readme_with_table(text: str) -> str:
    before, rest = text.split(START)
    _old, after = rest.split(END)
    return f"{before}{START}\n{table()}\n{END}{after}"


if __name__ == "__main__":
    README.write_text(readme_with_table(README.read_text()))
    covered = sum(bool(t) for t in covering().values())
    print(f"README.md: {covered} of {len(ITEMS)} reliability items covered", file=sys.stderr)
