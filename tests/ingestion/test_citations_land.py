"""Every chunk's citation link opens a page that holds the chunk's text, marked and scrolled to:
for a small document of every supported format, and for every real file in ../shared."""

import html
import io
import re
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.urls import reverse

from ingestion import index, pipeline
from ingestion.models import Document
from ingestion.parsing import SUPPORTED
from tests.assistant.test_chat import ask
from tests.conftest import FIXTURES, login, shared_fixture
from tests.factories import make_document, make_docx, make_pdf, make_pptx, make_xlsx
from tests.ingestion.test_document_page import marked

pytestmark = pytest.mark.embedded

CHUNKS_PER_DOCUMENT = 30
MARKDOWN = {".md", ".markdown"}


def prose(topic: str, sentences: int = 40) -> str:
    """Distinct sentences, long enough for several chunks that overlap."""
    return " ".join(
        f"Rule {n} of the {topic} policy sets {n * 3} days for case {n + 100} in region {n % 7}."
        for n in range(1, sentences + 1)
    )


def make_epub(chapters: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument'
            ':xmlns:container"><rootfiles><rootfile full-path="OEBPS/book.opf" media-type="applica'
            'tion/oebps-package+xml"/></rootfiles></container>',
        )
        items = "".join(
            f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in range(len(chapters))
        )
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        book.writestr(
            "OEBPS/book.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, (title, text) in enumerate(chapters.items()):
            book.writestr(
                f"OEBPS/c{i}.xhtml",
                f"<html><head><title>{title}</title></head>"
                f"<body><h1>{title}</h1><p>{text}</p></body></html>",
            )
    return buffer.getvalue()


def make_odt(sections: dict[str, str]) -> bytes:
    body = "".join(
        f'<text:h text:outline-level="1">{title}</text:h><text:p>{text}</text:p>'
        for title, text in sections.items()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as document:
        document.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        document.writestr(
            "content.xml",
            '<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:'
            'opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:'
            f'text:1.0"><office:body><office:text>{body}</office:text></office:body>'
            "</office:document-content>",
        )
    return buffer.getvalue()


def make_eml(subject: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = "hr@example.com", "all@example.com"
    message["Subject"] = subject
    message.set_content(text)
    return bytes(message)


def make_png(lines: list[str]) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1400, 60 + 50 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((30, 30 + 50 * n), line, fill="black", font=ImageFont.load_default(size=32))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


LEAVE = prose("leave")
TABLE = "| Grade | Annual days | Carry-over |\n|---|---|---|\n" + "\n".join(
    f"| G{n} | {20 + n} | {n % 5} |" for n in range(1, 30)
)
MARKDOWN_TEXT = (
    f"# Leave policy\n\n## Annual leave\n{LEAVE}\n\n## Grades\n\n{TABLE}\n\n"
    "## Steps\n\n1. Ask **your manager** first.\n"
    "2. Then file the `form` in the [portal](https://x.example/a_(b)).\n"
    f"- Keep a copy &amp; a note.\n\n> {prose('sick', 10)}\n"
)
OWN = {
    "policy.txt": lambda: f"Leave policy\n\n{LEAVE}\n\n{prose('sick')}\n".encode(),
    "policy.md": lambda: MARKDOWN_TEXT.encode(),
    "policy.markdown": lambda: MARKDOWN_TEXT.encode(),
    "policy.html": lambda: (
        f"<html><body><h1>Leave</h1><p>{LEAVE}</p><table><tr><th>Grade</th><th>Days</th></tr>"
        + "".join(f"<tr><td>G{n}</td><td>{20 + n}</td></tr>" for n in range(30))
        + f"</table><p>{prose('sick')}</p></body></html>"
    ).encode(),
    "policy.htm": lambda: f"<p>{LEAVE}</p><ul><li>{prose('sick', 5)}</li></ul>".encode(),
    "policy.csv": lambda: (
        "Grade,Annual days,Rule\n"
        + "\n".join(f"G{n},{20 + n},Rule {n} applies in region {n % 7}" for n in range(40))
    ).encode(),
    "policy.eml": lambda: make_eml("Leave policy", f"{LEAVE}\n\n{prose('sick')}"),
    "policy.pdf": lambda: make_pdf(
        [
            "\n".join(LEAVE[i : i + 90] for i in range(0, 2600, 90)),
            "\n".join(prose("sick")[i : i + 90] for i in range(0, 2600, 90)),
        ]
    ),
    "policy.docx": lambda: make_docx(
        [LEAVE],
        [["Grade", "Days"], *([f"G{n}", str(20 + n)] for n in range(30))],
        headings={"Sick leave": prose("sick"), "Parental leave": prose("parental")},
    ),
    "policy.pptx": lambda: make_pptx(
        [("Leave", LEAVE, prose("notes", 5)), ("Sick leave", prose("sick", 12), "")]
    ),
    "policy.xlsx": lambda: make_xlsx(
        {
            "Grades": [["Grade", "Annual days"], *([f"G{n}", 20 + n] for n in range(80))],
            "Rules": [["Rule"], *([s] for s in LEAVE.split(". "))],
        }
    ),
    "policy.epub": lambda: make_epub({"Annual leave": LEAVE, "Sick leave": prose("sick")}),
    "policy.odt": lambda: make_odt({"Annual leave": LEAVE, "Sick leave": prose("sick")}),
    "policy.rtf": lambda: (
        "{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 Leave policy\\par " + LEAVE + "\\par }"
    ).encode(),
    "policy.png": lambda: make_png(["Annual leave is 27 days a year.", "Carry over five days."]),
}


def squash(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def visible(chunk: str, extension: str) -> str:
    """What of a chunk's text a reader sees: for Markdown, without its syntax."""
    if extension in MARKDOWN:
        chunk = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", chunk)  # an image is not shown
        # Nor a link's address, whole or cut off by the chunk's start or end.
        address = r"(?:[^()\s]|\([^()\s]*\))*"
        chunk = re.sub(rf"\]\({address}\)?|^{address}\)", "", chunk)
        chunk = re.sub(r"^[ \t>]*(?:[#*+-]+|\d+[.)])[ \t]", "", chunk, flags=re.MULTILINE)
        chunk = html.unescape(chunk)
    return squash(chunk)


def holds(shown: str, chunk: str, extension: str) -> bool:
    """Text is marked as the chunk has it, whitespace aside; Markdown as a reader sees it."""
    if extension in MARKDOWN:
        return visible(chunk, extension) in squash(shown)
    return " ".join(chunk.split()) in " ".join(shown.split())


def misses(client, document: Document) -> list[str]:
    """The chunks whose citation link does not land on their passage, with why."""
    failures = []
    # Up to 30 chunks spread over the document, its first and last among them.
    step = -(-document.chunks // CHUNKS_PER_DOCUMENT)
    for n in sorted({*range(0, document.chunks, step), document.chunks - 1}):
        found = index.engine().chunk(document.pk, n)
        assert found is not None
        text, page = found.payload["text"], found.payload["page"]
        # The link the chat gives a source (templates/assistant/chat.html).
        link = f"{reverse('ingestion:document_page', args=[document.pk, page])}?chunk={n}#passage"
        url, anchor = link.split("#")
        response = client.get(url)
        opened = response.content.decode()
        shown = marked(opened)
        if response.status_code != 200:
            failures.append(f"chunk {n}: page {page} answers {response.status_code}")
        elif opened.count(f'id="{anchor}"') != 1 or f'<mark id="{anchor}">' not in opened:
            failures.append(f"chunk {n}: no <mark id={anchor}> on page {page}")
        elif document.extension in MARKDOWN and 'class="page-text rendered"' not in opened:
            failures.append(f"chunk {n}: Markdown page {page} shown as plain text")
        elif not holds(shown, text, document.extension):
            failures.append(f"chunk {n}: page {page} marks {shown[:80]!r}, not {text[:80]!r}")
    return failures


def test_there_is_a_document_of_every_format() -> None:
    # .msg (no writer here) comes from ../shared; JPEG and TIFF take the PNG's OCR path.
    assert {Path(n).suffix for n in OWN} == SUPPORTED - {".msg", ".jpg", ".jpeg", ".tif", ".tiff"}


@pytest.mark.parametrize("name", sorted(OWN))
def test_every_chunk_of_every_format_lands_on_its_marked_passage(people, name: str) -> None:
    document = make_document(people.legal, name, OWN[name]())
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.READY, document.error
    assert document.chunks > (0 if name.endswith((".png", ".rtf", ".pptx")) else 2)
    assert misses(login(people.teammate), document) == []


def shared_documents() -> list[str]:
    if not FIXTURES.exists():
        return ["(absent)"]
    return sorted(
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED
    )


@pytest.fixture
def fake_vectors(monkeypatch) -> None:
    """Where a passage lands does not depend on its vector: a constant one lets the 1,225-page
    book and the 619-page PDF go through the rest of the real pipeline in seconds."""
    vector = [1.0] + [0.0] * (index.VECTOR_SIZE - 1)
    monkeypatch.setattr("ingestion.index.writes.embed", lambda texts: [vector] * len(texts))


@pytest.mark.parametrize("relative", shared_documents())
def test_every_chunk_of_every_shared_document_lands(people, fake_vectors, relative: str) -> None:
    path = shared_fixture(relative)
    document = make_document(people.legal, path.name, path.read_bytes())
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    if document.status != Document.Status.READY:
        pytest.skip(f"{relative} is not ingested ({document.status}): {document.error}")
    assert misses(login(people.teammate), document) == []


DEMO = Path(__file__).resolve().parents[2] / "ingestion" / "demo" / "handbook"


def test_the_leave_policy_sources_open_on_their_sections(people, fake_llm) -> None:
    """The reported failure: source 1 opened "Page 1 of 5" on the title alone, nothing marked."""
    policy = make_document(people.legal, "leave-policy.md", (DEMO / "leave-policy.md").read_bytes())
    pipeline.ingest(policy.pk)
    policy.refresh_from_db()
    answer = ask(people.teammate, "How many days of annual leave do employees get?")[-1][1]
    links = re.findall(r'href="(/documents/\d+/pages/\d+/\?chunk=(\d+))#passage"', answer["html"])
    assert links
    client, opened = login(people.teammate), {}
    for url, chunk_no in links:
        page = client.get(url).content.decode()
        assert "Page 1 of 1" in page and "<h1>Northwind Care leave policy</h1>" in page
        assert "# Northwind" not in page
        opened[int(chunk_no)] = marked(page)
    annual = next(n for n in range(policy.chunks) if "27 days" in index.passage(policy.pk, n))
    assert annual in opened and "Annual leave Every full-time employee receives 27 days" in (
        " ".join(opened[annual].split())
    )
