"""Plain text, Markdown, CSV and HTML: decode whatever encoding, keep structure readable."""

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.parsing.errors import ParseError

if TYPE_CHECKING:
    from ingestion.parsing import Page


def decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    sample = data[:4096]
    # UTF-16 without a BOM: every other byte of ASCII-range text is zero.
    if len(sample) >= 8 and sample[1::2].count(0) > len(sample) * 0.4:
        return data.decode("utf-16-le", errors="replace")
    if len(sample) >= 8 and sample[0::2].count(0) > len(sample) * 0.4:
        return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # A legacy encoding: Windows-1252 (a superset of Latin-1's printable range) or Shift-JIS,
    # whichever reads more like language. More candidates only mislead the guess on short texts.
    best = from_bytes(data, cp_isolation=["cp1252", "cp932"]).best()
    return str(best) if best is not None else data.decode("cp1252", errors="replace")


def read_text(path: Path) -> str:
    text = decode_text(path.read_bytes()).replace("\x00", "")
    sample = text[:20000]
    noise = sum(1 for ch in sample if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    if sample and noise > len(sample) * 0.1:
        raise ParseError("The file looks like binary data, not text.")
    return text


def parse_plain(path: Path) -> list["Page"]:
    from ingestion.parsing import Page

    return [Page(1, read_text(path))]


# Linear: closing #s and spaces are stripped in Python; a lazy group before them backtracks
# for minutes on a heading followed by a few thousand spaces.
HEADING = re.compile(r"^#{1,3}[ \t]+(\S.*)$", re.MULTILINE)


def parse_markdown(path: Path) -> list["Page"]:
    """One section per heading, so a chunk never straddles two and carries its heading."""
    from ingestion.parsing import Page

    text = read_text(path)
    sections, start, heading = [], 0, ""
    for match in HEADING.finditer(text):
        sections.append((heading, text[start : match.start()]))
        heading, start = match.group(1).rstrip().rstrip("#").rstrip(), match.start()
    sections.append((heading, text[start:]))
    return [Page(1, body, heading) for heading, body in sections if body.strip()]


def rows_with_headers(rows: list[list[str]]) -> str:
    """Each row repeats its column headers, so a chunk cut from the middle still makes sense.
    The header row is the first one filled at least half as wide as the table (titles above it
    stay plain lines)."""
    rows = [[c.strip() for c in row] for row in rows if any(c.strip() for c in row)]
    width = max((sum(1 for c in row if c) for row in rows), default=0)
    start = next((i for i, r in enumerate(rows) if sum(1 for c in r if c) * 2 >= width), 0)
    if not rows:
        return ""
    lines = [" ".join(c for c in row if c) for row in rows[:start]]
    header = rows[start]
    lines.append(" | ".join(c for c in header if c))
    for row in rows[start + 1 :]:
        cells = [
            f"{header[i]}: {value}" if i < len(header) and header[i] else value
            for i, value in enumerate(row)
            if value
        ]
        lines.append("; ".join(cells))
    return "\n".join(lines)


def parse_csv(path: Path) -> list["Page"]:
    from ingestion.parsing import Page

    text = read_text(path)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    return [Page(1, rows_with_headers(rows))]


BLOCK_TAGS = [
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title",
    "section", "article", "table", "blockquote", "pre", "dd", "dt",
]  # fmt: skip
BOILERPLATE = ["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]


def html_to_text(markup: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(BOILERPLATE):
        tag.decompose()
    for cell in soup(["td", "th"]):
        cell.insert_after(" | ")
    # Block elements end a line; inline ones (links, bold) stay inside their sentence.
    for tag in soup(BLOCK_TAGS):
        tag.insert_after("\n")
    lines = (" ".join(line.split()).strip(" |") for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line)


def parse_html(path: Path) -> list["Page"]:
    from ingestion.parsing import Page

    return [Page(1, html_to_text(read_text(path)))]
