"""axe-core on every page, for each role that sees it, in light and dark mode, at phone and
desktop width: no serious or critical accessibility violation."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.test_browser_responsive import DESKTOP, PHONE, SCHEMES, become, pages_per_role, site

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


@pytest.fixture
def browser_context_args(browser_context_args):
    """The pages' CSP forbids inline scripts: axe is injected as one."""
    return {**browser_context_args, "bypass_csp": True}


def violations(page: Page, url: str, where: str) -> list[str]:
    page.goto(url)
    page.wait_for_load_state()
    page.add_script_tag(path=AXE)
    found = page.evaluate(RUN_AXE)
    return [f"{v['id']} ({v['impact']}) on {url} {where}: {v['targets'][:5]}" for v in found]


@pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed ({AXE}): make browser")
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
