"""In a real browser (Debian's chromium driven by Playwright)."""

import os

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, ingest_now, make_document, make_pdf

pytestmark = [pytest.mark.django_db(transaction=True)]
# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# body are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PAGES = ["Cover.", "Meal allowance.\nThe daily meal allowance abroad is 60 euros."]


@pytest.fixture
def travel_policy(people):
    document = make_document(people.legal, "travel.pdf", make_pdf(PAGES))
    ingest_now(document.pk)
    return document


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(f"{base}/chat/")
    page.wait_for_load_state()  # the deferred scripts run: Enter asks through chat.js


def count_streamed_tokens(page: Page) -> None:
    # Counts text appended to the streaming answer before the final render replaces it.
    page.evaluate(
        """() => {
        window.tokenAppends = 0;
        new MutationObserver((records) => {
          for (const r of records) {
            if (r.target.classList && r.target.classList.contains("streaming")) {
              window.tokenAppends += r.addedNodes.length;
            }
          }
        }).observe(document.getElementById("messages"), {childList: true, subtree: true});
    }"""
    )


def test_an_employee_sees_tokens_stream_and_opens_a_citation(
    page: Page, live_server, people, travel_policy, real_llm
) -> None:
    sign_in(page, live_server.url, "teammate")
    count_streamed_tokens(page)
    page.fill("textarea[name=question]", "What is the daily meal allowance abroad?")
    page.click("#ask button")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator("ol.sources")).to_be_visible(timeout=60_000)
    assert page.evaluate("window.tokenAppends") >= 3
    source = answer.locator("ol.sources li").first
    source.locator("summary").click()
    expect(source.locator("blockquote")).to_contain_text("60 euros")
    file_href = source.locator("a.file-link").get_attribute("href")
    assert file_href == f"/documents/{travel_policy.pk}/file/#page=2"
    response = page.request.get(f"{live_server.url}{file_href}")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    # The citation itself opens the page as text, the cited passage marked.
    link = source.locator("a.source-link")
    href = link.get_attribute("href") or ""
    assert href.startswith(f"/documents/{travel_policy.pk}/pages/2/?chunk=")
    link.click()  # opens the citation panel, then the page view from there
    panel = page.locator("dialog.citation-panel")
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    panel.get_by_role("link", name="Open page 2").click()
    expect(page.locator("mark#passage")).to_contain_text("60 euros")


def test_hostile_model_output_runs_nothing_and_loads_nothing(
    page: Page, live_server, people, travel_policy, fake_llm
) -> None:
    """Reliability #10, #11: hostile output runs and loads nothing in chromium."""
    fake_llm.tokens = [
        "<script>window.pwned = true</script>",
        "<img src=x onerror='window.pwned = true'>",
        "![tracker](http://203.0.113.9/pixel.png) The allowance is 60 euros [1].",
    ]
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    sign_in(page, live_server.url, "teammate")
    page.fill("textarea[name=question]", "What is the allowance?")
    page.click("#ask button")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator("a.cite")).to_have_text("[1]", timeout=30_000)
    answer.locator("a.cite").click()
    expect(answer.locator("ol.sources li").first.locator("blockquote")).to_be_visible()
    assert page.evaluate("window.pwned === undefined")
    assert answer.locator("img, script").count() == 0
    page.reload()  # the stored answer renders just as safely
    assert page.evaluate("window.pwned === undefined")
    assert outside == []


DROP = """(zone, files) => {
    const data = new DataTransfer();
    for (const [name, text] of files) data.items.add(new File([text], name));
    const init = {dataTransfer: data, bubbles: true, cancelable: true};
    zone.dispatchEvent(new DragEvent("dragover", init));
    zone.dispatchEvent(new DragEvent("drop", init));
}"""


def test_an_admin_uploads_a_folder_and_dropped_files_and_watches_them_ingest(
    page: Page, live_server, people, celery_worker, tmp_path
) -> None:
    handbook = tmp_path / "handbook"
    (handbook / "travel").mkdir(parents=True)
    (handbook / "travel" / "meals.md").write_text("# Meals\n\nThe meal allowance is 60 euros.\n")
    (handbook / "leave.txt").write_text("Annual leave is thirty days a year.\n")
    sign_in(page, live_server.url, "owner")
    page.goto(f"{live_server.url}/collections/{people.legal.pk}/")
    page.set_input_files("input[data-folder]", handbook)
    # Playwright cannot drive a drag from the desktop: the page gets the drop event a browser
    # dispatches, carrying two files.
    zone = page.locator("[data-drop-zone]")
    zone.evaluate(DROP, [["remote.md", "Remote work needs approval."], ["car.txt", "No cars."]])
    expect(zone).to_have_text("2 file(s) ready to upload.")
    page.click("#upload-form button[type=submit]")
    batch = page.locator("#documents .batch")
    expect(batch).to_contain_text("of 4 finished")
    # The page polls while documents are queued: it reaches 4 of 4 without a reload.
    expect(batch).to_contain_text("4 of 4 finished", timeout=120_000)
    expect(batch.locator("progress")).to_have_attribute("value", "4")
    expect(page.locator("#documents .status.ready")).to_have_count(4)
    stored = {(d.path, d.original_name, d.status) for d in people.legal.documents.all()}
    assert stored == {
        ("handbook/travel", "meals.md", "ready"),
        ("handbook", "leave.txt", "ready"),
        ("", "remote.md", "ready"),
        ("", "car.txt", "ready"),
    }
