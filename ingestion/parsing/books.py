"""EPUB (chapters in spine order), ODT (content.xml) and RTF."""

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.parsing.archive import open_checked
from ingestion.parsing.errors import ParseError
from ingestion.parsing.text import html_to_text, read_text

if TYPE_CHECKING:
    from ingestion.parsing import Page

OPF = "{http://www.idpf.org/2007/opf}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def parse_epub(path: Path) -> list["Page"]:
    """One page per chapter, in the order the book's spine gives."""
    from bs4 import BeautifulSoup
    from defusedxml import ElementTree

    from ingestion.parsing import Page

    # XHTML chapters legitimately carry a DOCTYPE; entity declarations are still refused.
    with open_checked(path, allow_doctype=True) as book:
        try:
            container = ElementTree.fromstring(book.read("META-INF/container.xml"))
            rootfile = container.find(f".//{CONTAINER}rootfile")
            opf_path = rootfile.get("full-path", "") if rootfile is not None else ""
            opf = ElementTree.fromstring(book.read(opf_path))
        except (KeyError, ElementTree.ParseError):
            raise ParseError("The EPUB has no readable table of contents.") from None
        base = posixpath.dirname(opf_path)
        hrefs = {i.get("id"): i.get("href", "") for i in opf.iter(f"{OPF}item")}
        pages = []
        for number, ref in enumerate(opf.iter(f"{OPF}itemref"), start=1):
            href = hrefs.get(ref.get("idref"))
            if not href:
                continue
            try:
                markup = book.read(posixpath.normpath(posixpath.join(base, href)))
            except KeyError:
                continue
            soup = BeautifulSoup(markup, "html.parser")
            heading = soup.find(["h1", "h2", "h3"]) or soup.find("title")
            title = " ".join(heading.get_text().split()) if heading else ""
            pages.append(Page(number, html_to_text(str(soup)), title[:200]))
    return pages


TEXT_NS = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE_NS = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"


def odf_text(element: object) -> str:
    """Text of an ODF element: <text:s/> is spaces, <text:tab/> a tab, <text:line-break/> a line."""
    parts: list[str] = []

    def walk(node) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag
            if tag == f"{TEXT_NS}s":
                parts.append(" " * int(child.get(f"{TEXT_NS}c", "1")))
            elif tag == f"{TEXT_NS}tab":
                parts.append("\t")
            elif tag == f"{TEXT_NS}line-break":
                parts.append("\n")
            elif tag != f"{TEXT_NS}note":
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    return "".join(parts)


def parse_odt(path: Path) -> list["Page"]:
    from defusedxml import ElementTree

    from ingestion.parsing import Page

    with open_checked(path) as document:
        try:
            root = ElementTree.fromstring(document.read("content.xml"))
        except (KeyError, ElementTree.ParseError):
            raise ParseError("The file is not a valid ODT document.") from None
    pages = [Page(1, "")]

    def walk(node) -> None:
        for child in node:
            if child.tag == f"{TEXT_NS}h":
                pages.append(Page(1, odf_text(child) + "\n\n", odf_text(child).strip()[:200]))
            elif child.tag == f"{TEXT_NS}p":
                pages[-1].text += odf_text(child) + "\n\n"
            elif child.tag == f"{TABLE_NS}table":
                rows = [
                    [odf_text(cell).strip() for cell in row.iter(f"{TABLE_NS}table-cell")]
                    for row in child.iter(f"{TABLE_NS}table-row")
                ]
                from ingestion.parsing.text import rows_with_headers

                pages[-1].text += rows_with_headers(rows) + "\n\n"
            else:
                walk(child)

    walk(root)
    return [p for p in pages if p.text.strip()]


def parse_rtf(path: Path) -> list["Page"]:
    from striprtf.striprtf import rtf_to_text

    from ingestion.parsing import Page

    try:
        text = rtf_to_text(read_text(path), errors="replace")
    except Exception:
        raise ParseError("The file is not a valid RTF document.") from None
    return [Page(1, text)]
