"""axe-core on every page, for each role that sees it, in light and dark mode, at phone and
desktop width, and on the chat's open panels, drawer and forms: no serious or critical
accessibility violation; once more with the interface in German."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.test_browser_responsive import (
    DESKTOP,
    PHONE,
    SCHEMES,
    ask,
    become,
    pages_per_role,
    sign_in,
    site,
)

__all__ = ["site"]  # the fixture, shared with the responsive test
pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Installed by `make browser`; only the tests use it.
AXE = Path(__file__).resolve().parents[1] / "var/node/node_modules/axe-core/axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => ({id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" "))}));
}"""


@pytest.fixture(autouse=True)
def axe_installed() -> None:
    """`make test` installs axe-core (`make browser`): without it these tests fail, never skip,
    so that a green run always means every page was checked."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed ({AXE}): run `make browser`")


@pytest.fixture
def browser_context_args(browser_context_args):
    """The pages' CSP forbids inline scripts: axe is injected as one."""
    return {**browser_context_args, "bypass_csp": True}


def scan(page: Page, where: str) -> list[str]:
    """axe on the page as it is now (a panel or form open, say)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=AXE)
    found = page.evaluate(RUN_AXE)
    return [f"{v['id']} ({v['impact']}) {where}: {v['targets'][:5]}" for v in found]


def violations(page: Page, url: str, where: str) -> list[str]:
    page.goto(url)
    page.wait_for_load_state()
    return scan(page, f"on {url} {where}")


def test_every_page_has_no_serious_accessibility_violation_for_any_role(
    page: Page, live_server, site
) -> None:
    base = live_server.url
    problems: list[str] = []
    for username, urls in pages_per_role(page, base, site).items():
        become(page, base, username)
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            for scheme in SCHEMES:
                page.emulate_media(color_scheme=scheme)
                where = f"as {username or 'anonymous'} at {size['width']} px in {scheme}"
                for url in urls:
                    problems += violations(page, url, where)
    assert not problems, "\n".join(problems)


def test_the_chats_open_panels_drawer_and_forms_have_no_serious_accessibility_violation(
    page: Page, live_server, site
) -> None:
    sign_in(page, live_server.url, "teammate")
    conversation = ask(page)
    panel = page.locator("dialog#citation-panel")
    problems: list[str] = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            where = f"on {conversation} at {size['width']} px in {scheme}"
            page.goto(conversation)
            page.wait_for_load_state()
            # The citation panel: at the side on a desktop, a bottom sheet on a phone.
            page.locator("a.cite").first.click()
            expect(panel.locator("mark#citation-passage")).to_be_visible()
            problems += scan(page, f"with the citation panel open {where}")
            page.keyboard.press("Escape")
            expect(panel).to_be_hidden()
            # After "Not helpful" the reasons and comment are open; so is the question's editor.
            with page.expect_response(lambda r: r.url.endswith("/feedback/")):
                page.locator("article.msg.assistant button.feedback-rating[value=down]").click()
            expect(page.locator("form.feedback details")).to_have_attribute("open", "")
            page.locator("article.msg.user button.edit-question").click()
            expect(page.get_by_label("Edit your question")).to_be_visible()
            problems += scan(page, f"with the feedback and edit forms open {where}")
            if size == PHONE:
                page.goto(conversation)
                page.get_by_role("button", name="Conversations").click()
                expect(page.locator("#sidebar")).to_be_visible()
                problems += scan(page, f"with the sidebar drawer open {where}")
    assert not problems, "\n".join(problems)


def test_every_page_in_german_has_no_serious_accessibility_violation(
    page: Page, live_server, site
) -> None:
    """Another language changes lengths, labels and the page's lang: one pass in German."""
    base = live_server.url
    page.set_extra_http_headers({"Accept-Language": "de"})
    problems: list[str] = []
    for username, urls in pages_per_role(page, base, site).items():
        become(page, base, username)
        for url in urls:
            problems += violations(page, url, f"in German as {username or 'anonymous'}")
            if page.locator("html").get_attribute("lang") != "de":
                problems.append(f"{url} is not in German")
    assert not problems, "\n".join(problems)
