"""schemathesis fuzzes the API from its own OpenAPI description (/v1/openapi.json): no request
it makes may get a 500, nor a response its description does not allow; requests the description
does not allow (wrong types, missing fields, values out of bounds) must be refused."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import ignored_auth

from assistant.models import QueryRecord
from ingestion import pipeline
from tests.factories import make_document
from tests.test_api import make_token

pytestmark = pytest.mark.embedded


@pytest.fixture
def api_schema(secret):
    # As Django's test client does (and undoes after each of its requests, so this comes after
    # the token is made): the end of a request must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def secret(people, fake_llm, settings) -> str:
    """A teammate's token over one ingested document, with limits no fuzzing reaches."""
    settings.RATE_LIMIT_API_TOKEN = settings.RATE_LIMIT_QUESTIONS = (10**6, 60)
    settings.QUERY_REWRITE = False
    pipeline.ingest(make_document(people.legal, "refunds.txt", b"Refunds take 14 days.").pk)
    return make_token(people.teammate)


OPERATIONS = [
    ("/v1/chat/completions", "POST"),
    ("/v1/models", "GET"),
    ("/v1/models/{model}", "GET"),
]


def fuzz(api_schema, secret: str, path: str, method: str, mode: GenerationMode, examples: int):
    """Run schemathesis' checks on each request it makes; the status codes it got, in order."""
    statuses: list[int] = []

    @given(case=api_schema[path][method].as_strategy(mode))
    # Derandomized: the same examples on every run, so a pass is a pass (not a lucky draw).
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        # The description names bearer auth, so schemathesis makes up a header: use the token.
        # Its check that made-up (negative: broken) credentials are refused cannot apply then.
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}
        statuses.append(case.call_and_validate(excluded_checks=[ignored_auth]).status_code)

    run()
    return statuses


# schemathesis' own pytest loader predates pytest 9: each operation runs as Hypothesis here.
@pytest.mark.parametrize("path, method", OPERATIONS)
def test_the_api_keeps_to_its_description(api_schema, secret, path: str, method: str) -> None:
    fuzz(api_schema, secret, path, method, GenerationMode.POSITIVE, 25)
    if path == "/v1/chat/completions":  # the fuzzing reached the answer, not only refusals
        assert QueryRecord.objects.filter(channel="api").exists()


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_malformed_requests_are_refused_not_a_500(api_schema, secret, path, method) -> None:
    """Negative data: schemathesis breaks the request on purpose (wrong types, missing fields,
    values out of bounds) and checks that what it broke is refused with a status the description
    allows (its negative_data_rejection check), never a 500."""
    statuses = fuzz(api_schema, secret, path, method, GenerationMode.NEGATIVE, 50)
    if path == "/v1/chat/completions":  # the malformed bodies reached the checks, not only auth
        assert 400 in statuses


def test_the_description_is_served_without_a_token(client) -> None:
    response = client.get(reverse("api:openapi"))
    assert response.status_code == 200
    description = response.json()
    assert set(description["paths"]) == {"/v1/chat/completions", "/v1/models", "/v1/models/{model}"}
    assert description["components"]["schemas"]["Source"]["required"][:2] == ["n", "document_id"]
