"""Every page at phone and desktop width, in light and dark mode, for each role that sees it:
no horizontal scrolling, readable text, large touch targets, visible focus; the chat's sidebar
is a drawer on phones. Writes the README's screenshots of the chat."""

import os
from pathlib import Path
from typing import Literal

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, ViewportSize, expect

from assistant.audit.models import QueryRecord
from assistant.models import ModelEndpoint
from tests.factories import PASSWORD, ingest_now, make_auditor, make_document, make_pdf, make_user

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
SCHEMES: list[Literal["light", "dark"]] = ["light", "dark"]
# A long answer with a list, a table wider than a phone and a code block.
ANSWER = [
    "Abroad you get a daily meal allowance of 60 euros [1].\n\n",
    "To claim it:\n1. Keep the receipts.\n2. File the claim within 30 days:\n",
    "  - online, or\n  - with your manager.\n\n",
    "| Country | Allowance | Receipts | Deadline | Approver |\n|---|---|---|---|---|\n",
    "| Any country abroad | 60 euros a day | required for every meal | 30 days | manager |\n\n",
    "```\nclaim --allowance 60 --currency EUR --receipts ./receipts/2026-11-trip-to-lyon\n```\n",
    "\n".join(f"Detail {n}: the allowance covers the day's meals." for n in range(25)),
]
SHORT_ANSWER = [
    "Abroad you get a daily meal allowance of 60 euros [1].\n\nTo claim it:\n",
    "1. Keep the receipts.\n2. Send them with your claim [1].\n\n",
    "| Where | Allowance |\n|---|---|\n| Abroad | 60 euros a day [1] |\n",
]

# Text contrast as WCAG 2 computes it, against the colour actually painted behind the text.
CONTRAST = """() => {
  const rgba = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/);
    return m ? m[1].split(/[\\s,/]+/).filter(Boolean).map(Number) : null; };
  const over = (top, under) => { const a = top.length > 3 ? top[3] : 1;
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)); };
  const luminance = (c) => { const [r, g, b] = c.map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const behind = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (!c || c[3] === 0) continue;
      layers.push(c);
      if (c.length < 4 || c[3] === 1) break;
    }
    return layers.reduceRight((under, top) => over(top, under), [255, 255, 255]); };
  const failures = [];
  for (const el of document.body.querySelectorAll("*")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3)
      .map((n) => n.data).join("").trim();
    if (!text || el.closest(":disabled, option, script, style")) continue;
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    const style = getComputedStyle(el);
    const bg = behind(el), fg = over(rgba(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) {
      failures.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}" ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}"""
TARGETS = (
    "button, a.button, header.top a, li > a, td > a, summary, select,"
    " input:not([type=checkbox]):not([type=radio]):not([type=file]):not([type=hidden])"
)
SMALL_TARGETS = f"""() => [...document.querySelectorAll("{TARGETS}")]
  .filter((el) => el.checkVisibility({{ checkVisibilityCSS: true }}))
  .filter((el) => el.getBoundingClientRect().height < 43.5)
  .map((el) => `${{el.tagName}} "${{el.textContent.trim().slice(0, 30)}}"`)"""
# The innermost elements that stick out of the window, to say what scrolls sideways.
WIDE = """() => [...document.body.querySelectorAll("*")]
  .filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5)
  .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > innerWidth + 0.5))
  .map((el) => el.tagName + "." + el.className).slice(0, 5)"""
DARK_PAGE = """() => getComputedStyle(document.body).backgroundColor.match(/\\d+/g)
  .slice(0, 3).map(Number).reduce((a, b) => a + b) < 150"""
# Whether a CSS transition (the drawer sliding, say) is running on the element.
SLIDING = "el => el.getAnimations().some((a) => a.playState === 'running')"
FOCUS_SHOWN = """() => { const el = document.activeElement, style = getComputedStyle(el);
  return el === document.body
    || (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2); }"""


@pytest.fixture
def site(people, fake_llm):
    """A ready document, an auditor and a superuser; the teammate has asked one question."""
    pages = ["Cover.", "Meal allowance.\nThe daily meal allowance abroad is 60 euros."]
    document = make_document(people.legal, "travel.pdf", make_pdf(pages))
    ingest_now(document.pk)
    fake_llm.tokens = ANSWER
    people.auditor = make_auditor()
    people.root = make_user("root", is_superuser=True, is_staff=True)
    people.document = document
    return people


def sign_in(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(f"{base}/chat/")


def ask(page: Page) -> str:
    page.fill("textarea[name=question]", "What is the meal allowance abroad?")
    page.click("#ask button[type=submit]")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator(".answer table")).to_be_visible(timeout=30_000)
    page.wait_for_url("**/chat/*/")
    return page.url


def check_page(page: Page, url: str, scheme: str) -> list[str]:
    page.goto(url)
    where = f"{url} at {page.evaluate('innerWidth')} px in {scheme}"
    problems = [f"low contrast on {where}: {text}" for text in page.evaluate(CONTRAST)]
    if page.evaluate(DARK_PAGE) != (scheme == "dark"):
        problems.append(f"not in the {scheme} theme: {where}")
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if width[0] > width[1]:
        problems.append(f"horizontal scroll on {where}: {width} {page.evaluate(WIDE)}")
    if page.viewport_size == PHONE:
        problems += [f"under 44 px on {where}: {t}" for t in page.evaluate(SMALL_TARGETS)]
    return problems


def check_focus(page: Page, url: str) -> list[str]:
    page.goto(url)
    problems = []
    for _ in range(15):
        page.keyboard.press("Tab")
        if not page.evaluate(FOCUS_SHOWN):
            shown = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
            problems.append(f"no focus outline on {url}: {shown}")
    return problems


def pages_per_role(page: Page, base: str, site) -> dict[str | None, list[str]]:
    """Every page each role can see (None: signed out), and the error pages (404, 403), as
    absolute URLs; a question is asked first, so that a conversation and its query record exist."""
    legal, document = site.legal.pk, site.document.pk
    sign_in(page, base, "teammate")
    conversation = ask(page)
    record = QueryRecord.objects.get()
    teammate = User.objects.get(username="teammate").pk
    model = ModelEndpoint.objects.create(
        name="big-external", base_url="https://llm.example.com/v1", model="big",
        location=ModelEndpoint.Location.EXTERNAL, api_key_env="BIG_KEY",
    )  # fmt: skip
    model.approved_collections.add(site.legal)
    visits = {
        None: ["/login/", "/no-such-page/"],
        "teammate": [conversation, "/chat/", "/collections/", f"/collections/{legal}/",
                     f"/documents/{document}/pages/2/", "/tokens/",
                     "/models/", "/collections/999999/"],  # 403 and 404
        "owner": ["/chat/", f"/collections/{legal}/", f"/collections/{legal}/access/",
                  f"/documents/{document}/pages/2/", "/batch/", "/feedback/", "/usage/"],
        "auditor": ["/audit/", f"/audit/records/{record.pk}/", "/audit/events/",
                    f"/audit/documents/{document}/"],
        "root": ["/collections/", "/people/", f"/people/{teammate}/", "/models/",
                 "/models/new/", f"/models/{model.pk}/", "/usage/", "/usage/budgets/"],
    }  # fmt: skip
    return {
        username: [u if u.startswith("http") else f"{base}{u}" for u in urls]
        for username, urls in visits.items()
    }


def become(page: Page, base: str, username: str | None) -> None:
    if username:
        sign_in(page, base, username)
    else:
        page.context.clear_cookies()


def test_every_page_fits_a_phone_and_reads_well_in_both_themes_for_each_role(
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
                for url in urls:
                    problems += check_page(page, url, scheme)
        page.set_viewport_size(DESKTOP)
        page.emulate_media(color_scheme="light")
        for url in urls:
            problems += check_focus(page, url)
    assert not problems, "\n".join(problems)


def test_on_a_phone_the_sidebar_is_a_drawer_and_long_answers_keep_the_question_box_in_view(
    page: Page, live_server, site
) -> None:
    sign_in(page, live_server.url, "teammate")
    page.set_viewport_size(PHONE)
    conversation = ask(page)
    page.goto(conversation)
    toggle = page.get_by_role("button", name="Conversations")
    sidebar = page.locator("#sidebar")
    assert not sidebar.evaluate(SLIDING), "the drawer slides on page load"
    expect(sidebar).to_be_hidden()
    page.keyboard.press("Tab")  # the drawer's button comes first
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(sidebar).to_be_visible()
    expect(sidebar.get_by_role("link", name="New conversation")).to_be_focused()
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    # A tap beside the open drawer closes it and does nothing else.
    toggle.click()
    expect(sidebar).to_be_visible()
    page.mouse.click(350, 400)
    expect(sidebar).to_be_hidden()
    assert page.url == conversation
    # The message list scrolls; the question box stays on screen.
    messages = page.locator("#messages")
    assert messages.evaluate("m => m.scrollHeight > m.clientHeight")
    messages.evaluate("m => m.scrollTo(0, m.scrollHeight)")
    box = page.locator("#ask textarea").bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    # On a desktop the sidebar is a column and there is no drawer button.
    page.set_viewport_size(DESKTOP)
    expect(sidebar).to_be_visible()
    expect(toggle).to_be_hidden()


def test_the_chat_screenshots_in_the_readme(page: Page, live_server, site, fake_llm) -> None:
    fake_llm.tokens = SHORT_ANSWER
    sign_in(page, live_server.url, "teammate")
    page.set_viewport_size(DESKTOP)
    conversation = ask(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            page.goto(conversation)
            page.locator("#messages").evaluate("m => m.scrollTo(0, 0)")
            sidebar = page.locator("#sidebar")
            if size == PHONE:
                # The drawer is off the screen from the first paint: nothing slides on load.
                assert not sidebar.evaluate(SLIDING), "the drawer slides on page load"
                expect(sidebar).to_be_hidden()
                box = sidebar.bounding_box()
                assert box and box["x"] + box["width"] <= 0, box
            else:
                expect(sidebar).to_be_in_viewport()
            path = SCREENSHOTS / f"chat-{name}-{scheme}.png"
            page.screenshot(path=str(path))
            assert path.stat().st_size > 10_000
