"""Models and policy in a real browser (Debian's chromium driven by Playwright): a superuser
registers an external model and opens a collection to it, an employee picks it in the chat and
sees who answered, and the usage page shows what it cost. The external model is a stand-in
server that records every request."""

import json
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from assistant.models import ModelEndpoint, QueryRecord, Usage
from tests.factories import ingest_now, make_document, make_user
from tests.fake_llm import FakeLLM
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CANARY = "CANARY-RESTRICTED-5521"


@pytest.fixture
def external() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.tokens = ["Meals abroad are paid ", "at 60 euros [1]."]
    fake.usage = (1200, 80)
    yield fake
    fake.close()


def test_an_external_model_is_registered_picked_and_costed(
    page: Page, live_server, people, fake_llm, external, settings
) -> None:
    fake_llm.usage = (500, 40)  # the local model's answer, priced at the external one's prices
    ingest_now(make_document(people.legal, "travel.txt", b"Meals abroad: 60 euros a day.").pk)
    ingest_now(make_document(people.sales, "secret.txt", f"{CANARY}: meals 9 euros.".encode()).pk)
    make_user("root", is_superuser=True)
    make_user("both", groups=["Legal", "Sales"])

    # The superuser makes Legal internal, then registers the external model and approves it.
    sign_in(page, live_server.url, "root")
    page.goto(f"{live_server.url}/collections/{people.legal.pk}/access/")
    page.select_option("#sensitivity", "internal")
    page.get_by_role("button", name="Save access").click()
    page.goto(f"{live_server.url}/models/new/")
    page.get_by_label("Name (what users pick)").fill("big-external")
    page.get_by_label("Base URL").fill(external.url)
    page.get_by_label("Model (the name the server knows it by)").fill("gpt-x")
    page.get_by_label("Where it runs").select_option("external")
    page.get_by_label("Input price per million tokens").fill("2.5")
    page.get_by_label("Output price per million tokens").fill("10")
    page.get_by_label("Legal").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Model big-external registered.")).to_be_visible()
    model = ModelEndpoint.objects.get(name="big-external")
    assert list(model.approved_collections.all()) == [people.legal]
    page.screenshot(path=str(settings.VAR_DIR / "models.png"), full_page=True)
    page.context.clear_cookies()

    # An employee reading Legal and restricted Sales: over both, the external model is not
    # offered; over Legal alone it is, and it answers.
    sign_in(page, live_server.url, "both")
    picker = page.locator("#model-choice")
    expect(picker.locator("option", has_text="big-external")).to_have_count(0)
    page.get_by_label("Sales").uncheck()
    page.fill("textarea[name=question]", "What is the meal allowance abroad?")
    page.click("#ask button[type=submit]")
    expect(page.locator("article.msg.assistant[id^=msg-]")).to_have_count(1)
    page.reload()
    page.select_option("#model-choice", "big-external")
    page.get_by_role("button", name="Use this model").click()
    expect(page.get_by_text("Saved: it answers the next question.")).to_be_visible()
    page.fill("textarea[name=question]", "And how much is it per day?")
    page.click("#ask button[type=submit]")
    answers = page.locator("article.msg.assistant[id^=msg-]")
    expect(answers).to_have_count(2)
    expect(answers.last).to_contain_text("Answered by big-external, an external model")
    first, second = QueryRecord.objects.order_by("id")
    assert (first.endpoint, second.endpoint) == ("on_premises", "external")
    sent = json.dumps(external.requests)
    assert "Meals abroad" in sent and CANARY not in sent and "secret.txt" not in sent
    page.context.clear_cookies()

    # The usage page shows the external answer's tokens and cost to the superuser.
    usage = Usage.objects.get(model="big-external")
    assert (usage.prompt_tokens, usage.completion_tokens) == (1200, 80)
    sign_in(page, live_server.url, "root")
    page.goto(f"{live_server.url}/usage/")
    expect(page.locator("main")).to_contain_text("big-external")
    expect(page.locator("main")).to_contain_text("0.0038")  # (1200 × 2.5 + 80 × 10) / 10⁶
    # Saved: the local answer's tokens at the external prices, (500 × 2.5 + 40 × 10) / 10⁶.
    expect(page.locator("main")).to_contain_text("0.0017 USD at the prices of big-external")
    page.screenshot(path=str(settings.VAR_DIR / "usage.png"), full_page=True)
