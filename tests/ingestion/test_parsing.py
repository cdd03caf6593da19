from pathlib import Path

import pytest

from ingestion.parsing import ParseError, decode_text, parse_file
from tests.conftest import shared_fixture
from tests.factories import make_docx, make_pdf


def parse(path: Path, extension: str, **limits: int):  # noqa: ANN201
    return parse_file(path, extension, timeout=limits.get("timeout", 60), memory_mb=1024)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_it_keeps_pdf_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(["The first page talks about apples.", "The second page covers pears."])
    pages = parse(write(tmp_path, "a.pdf", pdf), ".pdf")
    assert [p.number for p in pages] == [1, 2]
    assert "apples" in pages[0].text and "pears" in pages[1].text


def test_it_reads_docx_paragraphs_and_tables(tmp_path: Path) -> None:
    docx = make_docx(["Retention is seven years."], table=[["Record", "Years"], ["Invoice", "10"]])
    [page] = parse(write(tmp_path, "a.docx", docx), ".docx")
    assert "Retention is seven years." in page.text
    assert "Invoice | 10" in page.text


def test_it_strips_html_boilerplate(tmp_path: Path) -> None:
    html = b"<html><nav>Menu Home</nav><script>alert(1)</script><p>Body text here.</p></html>"
    [page] = parse(write(tmp_path, "a.html", html), ".html")
    assert "Body text here." in page.text
    assert "alert" not in page.text and "Menu" not in page.text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Grüße".encode(), "Grüße"),
        ("Grüße".encode("cp1252"), "Grüße"),
        (b"\xef\xbb\xbf" + "Grüße".encode(), "Grüße"),
        ("Grüße".encode("utf-16"), "Grüße"),
    ],
)
def test_it_decodes_common_encodings(raw: bytes, expected: str) -> None:
    assert decode_text(raw) == expected


def test_it_removes_nul_bytes(tmp_path: Path) -> None:
    [page] = parse(write(tmp_path, "a.txt", b"abc\x00def"), ".txt")
    assert page.text == "abcdef"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "The file is empty."),
        ("a.exe", b"MZ\x90\x00", "not supported"),
        ("blank.txt", b"   \n\n  ", "No text could be extracted"),
        ("fake.pdf", b"<html>not a pdf</html>", "The PDF could not be read"),
        ("fake.docx", b"\x00\x01binary", "not a valid DOCX"),
    ],
)
def test_it_explains_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(write(tmp_path, name, content), Path(name).suffix)


def test_it_reports_encrypted_pdfs(tmp_path: Path) -> None:
    pdf = make_pdf(["secret"], password="hunter2")
    with pytest.raises(ParseError, match="encrypted"):
        parse(write(tmp_path, "locked.pdf", pdf), ".pdf")


def test_it_stops_a_parser_that_runs_too_long(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    # A parser stuck in a loop: the child sleeps; the wall-clock limit ends it.
    monkeypatch.setenv("PYTHONSTARTUP", "")
    slow = write(tmp_path, "slow.txt", b"text")
    import ingestion.parsing as parsing

    monkeypatch.setattr(parsing.sys, "executable", str(write(tmp_path, "py", b"")))
    (tmp_path / "py").write_text("#!/bin/sh\nsleep 10\n")
    (tmp_path / "py").chmod(0o755)
    with pytest.raises(ParseError, match="longer than 1 seconds"):
        parse(slow, ".txt", timeout=1)


@pytest.mark.parametrize(
    ("relative", "extension", "needle"),
    [
        ("pdf/layout-parser-paper-fast.pdf", ".pdf", "LayoutParser"),
        ("docx/word_sample.docx", ".docx", "Swimming in the lake"),
        ("html/wiki_duck.html", ".html", "Duck is the common name"),
        ("md/wiki.md", ".md", "International Business Machines"),
        ("txt/fake-text-utf-16.txt", ".txt", "This is a test document to use for unit tests."),
        ("md/umlauts-non-utf8.md", ".md", "ö"),
    ],
)
def test_it_parses_real_world_files(relative: str, extension: str, needle: str) -> None:
    pages = parse(shared_fixture(relative), extension)
    assert needle in " ".join(p.text for p in pages)


def test_it_refuses_a_real_password_protected_pdf() -> None:
    with pytest.raises(ParseError, match="encrypted"):
        parse(shared_fixture("pdf/libreoffice-writer-password.pdf"), ".pdf")
