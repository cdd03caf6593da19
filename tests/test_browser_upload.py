"""The upload form in a real browser (Debian's chromium driven by Playwright): it shows the
bytes sent, and says so when the request fails instead of showing nothing."""

import os

import pytest
from playwright.sync_api import Page, Route, expect

from ingestion.models import Document
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Records every text the form's "sent" line shows; the list outlives the page's navigation.
WATCH_SENT = """() => {
    new MutationObserver((records) => {
        for (const r of records) for (const node of r.addedNodes) window.recordSent(node.data);
    }).observe(document.querySelector("[data-upload-sent]"), {childList: true});
}"""


def open_collection(page: Page, base: str, people) -> None:
    sign_in(page, base, "owner")
    page.goto(f"{base}/collections/{people.legal.pk}/")


def test_the_form_shows_the_bytes_sent(page: Page, live_server, people, tmp_path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"Rule. " * 700_000)  # 4 MB
    open_collection(page, live_server.url, people)
    shown: list[str] = []
    page.expose_function("recordSent", lambda text: shown.append(text))
    page.evaluate(WATCH_SENT)
    page.set_input_files("input[name=files]:not([data-folder])", big)
    page.click("#upload-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("1 file(s) uploaded")
    assert "4.0 MB of 4.0 MB sent" in shown
    assert Document.objects.get().original_name == "big.txt"


def test_a_failed_upload_is_explained(page: Page, live_server, people, tmp_path) -> None:
    (tmp_path / "a.txt").write_text("A rule.")
    open_collection(page, live_server.url, people)
    page.route("**/upload/", lambda route: route.abort("connectionreset"))
    page.set_input_files("input[name=files]:not([data-folder])", tmp_path / "a.txt")
    page.click("#upload-form button[type=submit]")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The upload was interrupted")
    expect(alert).to_contain_text("nothing was uploaded")
    expect(page.locator("[data-upload-progress]")).to_be_hidden()
    expect(page.locator("#upload-form button[type=submit]")).to_be_enabled()
    assert not Document.objects.exists()


def test_a_refused_upload_shows_the_servers_reason(
    page: Page, live_server, people, tmp_path
) -> None:
    (tmp_path / "a.txt").write_text("A rule.")
    open_collection(page, live_server.url, people)
    held: list[Route] = []
    page.route("**/upload/", lambda route: held.append(route))
    page.set_input_files("input[name=files]:not([data-folder])", tmp_path / "a.txt")
    page.click("#upload-form button[type=submit]")
    # While the server has not answered, the form shows the upload under way.
    expect(page.locator("[data-upload-progress]")).to_be_visible()
    expect(page.locator("#upload-form button[type=submit]")).to_be_disabled()
    held[0].fulfill(status=429, content_type="text/plain", body="You are uploading too fast.")
    expect(page.get_by_role("alert")).to_have_text("You are uploading too fast.")
    expect(page.locator("[data-upload-progress]")).to_be_hidden()
