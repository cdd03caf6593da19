"""Citation links open the document's page as text, with the cited passage marked."""

import html
import re

import pytest
from django.urls import reverse

from assistant.models import AuditEvent
from ingestion import index, pages, parsing, pipeline
from ingestion.models import Document, DocumentPage
from ingestion.parsing import Page
from tests.assistant.test_chat import ask
from tests.conftest import login
from tests.factories import make_document, make_docx, make_pdf

pytestmark = pytest.mark.embedded

PASSAGE = "Refunds take 14 days after the returned item arrives."
FORMATS = {
    "policy.pdf": lambda: make_pdf(["Cover page.", PASSAGE]),
    "policy.docx": lambda: make_docx(["Cover page.", PASSAGE]),
    "policy.html": lambda: f"<html><body><h1>Policy</h1><p>{PASSAGE}</p></body></html>".encode(),
    "policy.md": lambda: f"# Policy\n\n{PASSAGE}\n".encode(),
    "policy.txt": lambda: f"Policy\n\n{PASSAGE}\n".encode(),
}


def marked(page: str) -> str:
    """The text of every <mark> on the page: a rendered passage is marked run by run."""
    parts = re.findall(r"<mark\b[^>]*>(.*?)</mark>", page, re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", " ".join(parts)))


def page_url(document_id: int, page: int, chunk_no: int | None = None) -> str:
    url = reverse("ingestion:document_page", args=[document_id, page])
    return url if chunk_no is None else f"{url}?chunk={chunk_no}"


def cited(document, collection_id: int):
    pipeline.ingest(document.pk)
    [hit] = index.search("how long do refunds take", [collection_id], 1)
    return hit


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_the_cited_passage_is_marked_on_its_page(people, name: str) -> None:
    document = make_document(people.legal, name, FORMATS[name]())
    hit = cited(document, people.legal.pk)
    response = login(people.teammate).get(page_url(document.pk, hit.page, hit.chunk_no))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<mark id="passage">') == 1
    assert PASSAGE in marked(page)
    assert response["Cache-Control"] == "no-store"
    if name.endswith(".pdf"):
        assert hit.page == 2 and "Cover page" not in marked(page)
        assert f"{reverse('ingestion:document_file', args=[document.pk])}#page=2" in page


def ingested(collection, name: str, content: bytes):
    document = make_document(collection, name, content)
    pipeline.ingest(document.pk)
    return document


def test_outsiders_get_404_for_existing_and_missing_documents(people) -> None:
    document = ingested(people.legal, "policy.txt", PASSAGE.encode())
    outsider = login(people.outsider)
    assert outsider.get(page_url(document.pk, 1, 0)).status_code == 404
    assert outsider.get(page_url(document.pk + 999, 1)).status_code == 404
    assert login(people.owner).get(page_url(document.pk, 1)).status_code == 200
    assert login(people.teammate).get(page_url(document.pk, 2)).status_code == 404  # no page 2


def test_a_chunk_number_cannot_pull_in_text_of_another_document(people) -> None:
    mine = make_document(people.legal, "mine.txt", b"Lunch is at noon.")
    secret = make_document(people.sales, "secret.txt", b"SECRET-CANARY pricing tiers.")
    pipeline.ingest(mine.pk)
    pipeline.ingest(secret.pk)
    page = login(people.teammate).get(page_url(mine.pk, 1, 0)).content.decode()
    assert '<mark id="passage">Lunch is at noon.</mark>' in page
    page = login(people.teammate).get(page_url(mine.pk, 1, 7)).content.decode()
    assert "<mark" not in page and "SECRET-CANARY" not in page


def test_page_text_is_escaped(people) -> None:
    document = ingested(people.legal, "x.txt", b"<script>alert(1)</script> words")
    page = login(people.teammate).get(page_url(document.pk, 1)).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


def test_chat_sources_link_to_the_marked_passage(people, fake_llm) -> None:
    document = make_document(people.legal, "refunds.pdf", make_pdf(["Cover page.", PASSAGE]))
    hit = cited(document, people.legal.pk)
    html = ask(people.teammate)[-1][1]["html"]
    assert f'href="{page_url(document.pk, 2, hit.chunk_no)}#passage"' in html


def test_viewing_a_page_is_audited_with_its_number(people) -> None:
    document = ingested(people.legal, "policy.pdf", make_pdf(["Cover page.", PASSAGE]))
    opened = AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_OPENED)
    assert login(people.teammate).get(page_url(document.pk, 2)).status_code == 200
    [event] = opened
    assert (event.actor_username, event.target_id) == ("teammate", str(document.pk))
    assert event.detail == {"page": 2}
    assert login(people.teammate).get(page_url(document.pk, 1)).status_code == 200
    assert sorted(e.detail["page"] for e in opened.all()) == [1, 2]


def test_a_page_the_viewer_may_not_see_is_not_audited_as_opened(people) -> None:
    document = ingested(people.legal, "policy.pdf", make_pdf(["Cover page.", PASSAGE]))
    assert login(people.outsider).get(page_url(document.pk, 1)).status_code == 404
    assert login(people.teammate).get(page_url(document.pk, 3)).status_code == 404  # no page 3
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_OPENED).exists()
    assert AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED).actor_username == (
        "outsider"
    )


def test_the_page_view_reads_stored_pages_and_never_parses(people, monkeypatch) -> None:
    document = ingested(people.legal, "policy.pdf", make_pdf(["Cover page.", PASSAGE]))

    def no_parsing(*args, **kwargs):
        raise AssertionError("the web must not parse")

    # parse_file runs the parser child through subprocess.run: neither may happen in the web.
    monkeypatch.setattr(parsing, "parse_file", no_parsing)
    monkeypatch.setattr(parsing.subprocess, "run", no_parsing)
    page = login(people.teammate).get(page_url(document.pk, 2)).content.decode()
    assert PASSAGE in page and "Page 2 of 2" in page
    stored = DocumentPage.objects.filter(document=document).order_by("number")
    assert [p.number for p in stored] == [1, 2] and PASSAGE in stored[1].text


def test_a_document_without_stored_pages_asks_for_a_reingest(people) -> None:
    document = make_document(people.legal, "policy.txt", PASSAGE.encode())  # not ingested
    response = login(people.teammate).get(page_url(document.pk, 1))
    assert response.status_code == 404
    assert "not stored yet" in response.content.decode()
    Document.objects.filter(pk=document.pk).update(status=Document.Status.READY)
    response = login(people.teammate).get(page_url(document.pk, 1))
    assert response.status_code == 404
    assert "Re-ingest the document to view its pages" in response.content.decode()
    response = login(people.outsider).get(page_url(document.pk, 1))
    assert response.status_code == 404 and "policy" not in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_OPENED).exists()


def test_a_document_without_a_file_is_a_404(people) -> None:
    document = ingested(people.legal, "policy.txt", PASSAGE.encode())
    Document.objects.filter(pk=document.pk).update(file="")
    assert login(people.teammate).get(page_url(document.pk, 1)).status_code == 404
    assert login(people.outsider).get(page_url(document.pk, 1)).status_code == 404


def test_sections_of_one_page_are_one_page(people) -> None:
    content = make_docx(["Introduction."], headings={"Refunds": PASSAGE})
    document = make_document(people.legal, "policy.docx", content)
    hit = cited(document, people.legal.pk)
    page = login(people.teammate).get(page_url(document.pk, 1, hit.chunk_no)).content.decode()
    assert "Introduction." in page and PASSAGE in marked(page)
    assert "Introduction." not in marked(page)
    assert "Page 1 of 1" in page


def test_previous_and_next_skip_pages_without_text(people) -> None:
    document = ingested(people.legal, "gap.pdf", make_pdf(["One.", "", "Three."]))
    page = login(people.teammate).get(page_url(document.pk, 1)).content.decode()
    assert "Page 1 of 3" in page and f'href="{page_url(document.pk, 3)}">next' in page
    page = login(people.teammate).get(page_url(document.pk, 3)).content.decode()
    assert f'href="{page_url(document.pk, 1)}">previous' in page and ">next<" not in page


def test_storing_pages_replaces_them(people) -> None:
    document = make_document(people.legal, "policy.txt", PASSAGE.encode())
    pages.store(document.pk, [Page(1, "Old one."), Page(2, "Old two.")])
    pages.store(document.pk, [Page(1, "New one.", "Intro"), Page(1, "More of one.")])
    stored = DocumentPage.objects.filter(document=document)
    assert [(p.number, p.text, p.heading) for p in stored] == [
        (1, "New one.\n\nMore of one.", "Intro")
    ]
    gone = document.pk
    document.delete()  # a document deleted while it was being ingested gets no pages
    pages.store(gone, [Page(1, "Late.")])
    assert not DocumentPage.objects.filter(document_id=gone).exists()


def rendered(page: str) -> str:
    return page.split('<div class="page-text rendered">')[1].split("</div>")[0]


def test_markdown_pages_show_headings_and_tables_with_the_passage_marked(people) -> None:
    content = f"# Policy\n\n## Refunds\n{PASSAGE}\n\n| Item | Days |\n|---|---|\n| Shoes | 30 |\n"
    document = make_document(people.legal, "policy.md", content.encode())
    hit = cited(document, people.legal.pk)
    page = rendered(login(people.teammate).get(page_url(document.pk, 1)).content.decode())
    assert "<h1>Policy</h1>" in page and "<h2>Refunds</h2>" in page and "#" not in page
    assert "<th>Item</th>" in page and "<td>Shoes</td>" in page and "|" not in page
    page = rendered(
        login(people.teammate).get(page_url(document.pk, 1, hit.chunk_no)).content.decode()
    )
    assert '<h2><mark id="passage">Refunds</mark></h2>' in page
    assert f"<p><mark>{PASSAGE}</mark></p>" in page and "<td><mark>Shoes</mark></td>" in page
    assert "<h1>Policy</h1>" in page  # before the passage: not marked
    assert login(people.outsider).get(page_url(document.pk, 1, hit.chunk_no)).status_code == 404


HOSTILE = """# Notes

<script>alert("script")</script>

[click me](javascript:alert('link')) and <a href="javascript:alert('a')">here</a>

<img src=x onerror=alert('img')> ![chart](javascript:alert('image'))

<div onclick="alert('div')"><iframe src="https://evil.example/"></iframe></div>

<https://evil.example/auto> <style>body { display: none }</style>
"""


def test_hostile_markdown_is_shown_as_text_and_never_runs(people) -> None:
    document = ingested(people.legal, "notes.md", HOSTILE.encode())
    for url in (page_url(document.pk, 1), page_url(document.pk, 1, 0)):
        page = rendered(login(people.teammate).get(url).content.decode())
        tags = set(re.findall(r"<([a-z0-9]+)", page))
        assert tags <= {"h1", "p", "mark"}, tags
        assert set(re.findall(r"<[a-z0-9]+ [^>]*>", page)) <= {'<mark id="passage">'}
        assert "&lt;script&gt;" in page and "&lt;img src=x onerror" in page  # shown as text
        assert "click me" in page and "javascript:alert('link')" not in page
    assert '<mark id="passage">' in page


def test_a_marker_the_sanitiser_would_drop_falls_back_to_text(people) -> None:
    text = "Intro.\n\nSee ![a chart of leave](c.png) and [the portal](https://x.example/a_(b)) now."
    inside_alt = (text.index("chart"), len(text))
    assert pages.mark_markdown(text, inside_alt) is None
    assert '<mark id="passage">chart of leave' in pages.mark_text(text, inside_alt)
    inside_address = (text.index("x.example"), len(text))  # a chunk may start in a link address
    html = pages.mark_markdown(text, inside_address)
    assert html is not None and html.endswith('portal<mark id="passage"> now.</mark></p>')


def test_a_markdown_page_too_long_to_render_is_shown_as_text(people, monkeypatch) -> None:
    document = make_document(people.legal, "policy.md", f"# Policy\n\n{PASSAGE}\n".encode())
    hit = cited(document, people.legal.pk)
    monkeypatch.setattr(pages, "RENDER_LIMIT", 20)
    page = login(people.teammate).get(page_url(document.pk, 1, hit.chunk_no)).content.decode()
    assert '<pre class="page-text"><mark id="passage"># Policy' in page and "<h1>Policy" not in page
