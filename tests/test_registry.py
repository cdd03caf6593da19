"""The model registry (superusers register and change model servers) and collection sensitivity
(superusers decide which models may read a collection), through HTTP."""

import re

import pytest
from django.urls import reverse

from assistant.models import AuditEvent, ModelEndpoint
from ingestion.models import Collection
from tests.conftest import login
from tests.factories import make_user

INTERNAL, RESTRICTED = Collection.Sensitivity.INTERNAL, Collection.Sensitivity.RESTRICTED
SECRET = "sk-live-do-not-show-0123456789"


@pytest.fixture
def root(db):
    return make_user("root", is_superuser=True, is_staff=True)


def form_data(**changes: object) -> dict:
    data = {
        "name": "large",
        "base_url": "http://large-llm:8000/v1",
        "model": "Qwen/Qwen2.5-72B-Instruct",
        "api_key_env": "",
        "api_key_file": "",
        "context_length": "32768",
        "location": "external",
        "input_price": "2.5",
        "output_price": "10",
        "enabled": "on",
        "approved_collections": [],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def no_inline_script(html: str) -> bool:
    """The pages' CSP forbids inline scripts and styles: every <script> has a src."""
    scripts = re.findall(r"<script\b[^>]*>", html)
    return all("src=" in tag for tag in scripts) and " style=" not in html and "<style" not in html


def test_only_superusers_reach_the_model_pages(people, root) -> None:
    row = ModelEndpoint.objects.create(
        name="large", base_url="http://large:8000/v1", model="m", location="on_premises"
    )
    pages = [
        reverse("models:index"),
        reverse("models:create"),
        reverse("models:edit", args=[row.pk]),
    ]
    for user in (people.owner, people.teammate, people.outsider):
        client = login(user)
        for url in pages:
            assert client.get(url).status_code == 403, (user, url)
        assert client.post(pages[1], form_data(name="sneaky")).status_code == 403
        assert client.post(pages[2], form_data(name="renamed")).status_code == 403
    assert list(ModelEndpoint.objects.values_list("name", flat=True)) == ["large"]
    assert not events(AuditEvent.Action.MODEL_CHANGED)
    for url in pages:
        assert login(root).get(url).status_code == 200


def test_the_index_lists_the_built_in_model_and_the_registered_ones(root, settings) -> None:
    ModelEndpoint.objects.create(
        name="large", base_url="http://large:8000/v1", model="big", location="external"
    )
    response = login(root).get(reverse("models:index"))
    html = response.content.decode()
    assert (
        settings.LLM_NAME in html and settings.LLM_BASE_URL in html and settings.LLM_MODEL in html
    )
    assert "large" in html and "http://large:8000/v1" in html
    assert no_inline_script(html)


def test_a_superuser_registers_a_model_through_the_form_and_it_is_audited(people, root) -> None:
    people.legal.sensitivity = INTERNAL
    people.legal.save()
    response = login(root).post(
        reverse("models:create"),
        form_data(api_key_env="LARGE_API_KEY", approved_collections=[people.legal.pk]),
    )
    assert response.status_code == 302 and response.url == reverse("models:index")
    row = ModelEndpoint.objects.get()
    assert (row.name, row.base_url, row.location) == (
        "large",
        "http://large-llm:8000/v1",
        "external",
    )
    assert row.context_length == 32768 and str(row.output_price) == "10.0000"
    assert list(row.approved_collections.all()) == [people.legal]
    [event] = events(AuditEvent.Action.MODEL_REGISTERED)
    assert event.actor_username == "root" and event.target_id == str(row.pk)
    assert event.detail["after"]["approved_collections"] == ["Legal"]
    assert event.detail["after"]["api_key_env"] == "LARGE_API_KEY"


def test_editing_a_model_records_before_and_after(root) -> None:
    client = login(root)
    client.post(reverse("models:create"), form_data())
    row = ModelEndpoint.objects.get()
    response = client.post(
        reverse("models:edit", args=[row.pk]), form_data(model="bigger", enabled=None)
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.model == "bigger" and not row.enabled
    [event] = events(AuditEvent.Action.MODEL_CHANGED)
    assert event.detail["before"]["model"] == "Qwen/Qwen2.5-72B-Instruct"
    assert event.detail["after"]["model"] == "bigger"
    assert (event.detail["before"]["enabled"], event.detail["after"]["enabled"]) == (True, False)


def test_saving_a_model_unchanged_records_nothing(root) -> None:
    client = login(root)
    client.post(reverse("models:create"), form_data())
    row = ModelEndpoint.objects.get()
    client.post(reverse("models:edit", args=[row.pk]), form_data())
    assert not events(AuditEvent.Action.MODEL_CHANGED)


def test_at_most_one_model_is_the_default(root) -> None:
    client = login(root)
    client.post(reverse("models:create"), form_data(name="first", default="on"))
    client.post(reverse("models:create"), form_data(name="second", default="on"))
    assert list(ModelEndpoint.objects.filter(default=True).values_list("name", flat=True)) == [
        "second"
    ]
    [_, second] = events(AuditEvent.Action.MODEL_REGISTERED)
    assert second.detail["default_cleared"] == ["first"]


def test_the_key_is_never_displayed_only_whether_it_is_found(root, monkeypatch, tmp_path) -> None:
    client = login(root)
    client.post(reverse("models:create"), form_data(name="by-env", api_key_env="LARGE_KEY"))
    key_file = tmp_path / "key"
    client.post(reverse("models:create"), form_data(name="by-file", api_key_file=str(key_file)))
    by_env, by_file = (ModelEndpoint.objects.get(name=n) for n in ("by-env", "by-file"))
    monkeypatch.delenv("LARGE_KEY", raising=False)
    assert "missing" in client.get(reverse("models:edit", args=[by_env.pk])).content.decode()

    monkeypatch.setenv("LARGE_KEY", SECRET)
    key_file.write_text(SECRET)
    for row in (by_env, by_file):
        html = client.get(reverse("models:edit", args=[row.pk])).content.decode()
        assert SECRET not in html
        assert re.search(r'id="key-status">[^<]*\bset\b', html)
    assert SECRET not in client.get(reverse("models:index")).content.decode()
    assert SECRET not in str([e.detail for e in AuditEvent.objects.all()])


def test_a_pasted_key_or_credentials_in_the_address_are_refused(root) -> None:
    response = login(root).post(
        reverse("models:create"),
        form_data(api_key_env=SECRET, base_url="https://user:pw@api.example.com/v1"),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"api_key_env", "base_url"}
    assert SECRET not in str(form.errors)
    assert not ModelEndpoint.objects.exists()


def test_the_built_in_name_and_auto_are_reserved(root, settings) -> None:
    client = login(root)
    for name in (settings.LLM_NAME, "Auto"):
        response = client.post(reverse("models:create"), form_data(name=name))
        assert "name" in response.context["form"].errors
    assert not ModelEndpoint.objects.exists()


def test_a_restricted_collection_is_not_offered_and_is_refused(people, root) -> None:
    people.sales.sensitivity = INTERNAL
    people.sales.save()  # Legal stays restricted (the default)
    client = login(root)
    form_page = client.get(reverse("models:create")).content.decode()
    assert f'value="{people.sales.pk}"' in form_page
    assert f'value="{people.legal.pk}"' not in form_page
    assert no_inline_script(form_page)

    response = client.post(
        reverse("models:create"),
        form_data(approved_collections=[people.legal.pk, people.sales.pk]),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["approved_collections"]
    assert "Legal is restricted" in errors[0]
    assert not ModelEndpoint.objects.exists()
    assert not events(AuditEvent.Action.MODEL_REGISTERED)


def test_an_on_premises_model_needs_no_approvals(people, root) -> None:
    people.sales.sensitivity = INTERNAL
    people.sales.save()
    login(root).post(
        reverse("models:create"),
        form_data(location="on_premises", approved_collections=[people.sales.pk]),
    )
    assert not ModelEndpoint.objects.get().approved_collections.exists()


# --- collection sensitivity --------------------------------------------------------------


def access_form(collection: Collection, **changes: object) -> dict:
    data = {
        "groups": list(collection.groups.values_list("pk", flat=True)),
        "managers": list(collection.managers.values_list("pk", flat=True)),
        "retention_days": "",
    }
    data.update(changes)
    return data


def test_a_superuser_makes_a_collection_restricted_and_its_approvals_are_dropped(
    people, root
) -> None:
    people.legal.sensitivity = INTERNAL
    people.legal.save()
    large = ModelEndpoint.objects.create(
        name="large", base_url="http://large:8000/v1", model="m", location="external"
    )
    large.approved_collections.add(people.legal, people.sales)
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    response = login(root).post(url, access_form(people.legal, sensitivity=RESTRICTED))
    assert response.status_code == 302
    people.legal.refresh_from_db()
    assert people.legal.sensitivity == RESTRICTED
    assert list(large.approved_collections.all()) == [people.sales]
    [event] = events(AuditEvent.Action.SENSITIVITY_CHANGED)
    assert event.target_id == str(people.legal.pk) and event.actor_username == "root"
    assert event.detail == {
        "before": "internal",
        "after": "restricted",
        "approvals_dropped": ["large"],
    }


def test_making_a_collection_internal_is_audited_and_shown(people, root) -> None:
    client = login(root)
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    page = client.get(url).content.decode()
    assert 'name="sensitivity"' in page and no_inline_script(page)
    client.post(url, access_form(people.legal, sensitivity=INTERNAL))
    people.legal.refresh_from_db()
    assert people.legal.sensitivity == INTERNAL
    [event] = events(AuditEvent.Action.SENSITIVITY_CHANGED)
    assert event.detail == {"before": "restricted", "after": "internal"}
    collection_page = client.get(reverse("ingestion:collection", args=[people.legal.pk]))
    assert (
        "Internal: on-premises, or external models approved for it"
        in collection_page.content.decode()
    )


def test_a_manager_sees_the_sensitivity_but_cannot_change_it(people) -> None:
    client = login(people.owner)  # manages Legal, not a superuser
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    page = client.get(url).content.decode()
    assert 'name="sensitivity"' not in page
    assert "Restricted: on-premises models only" in page
    response = client.post(url, access_form(people.legal, sensitivity=INTERNAL))
    assert response.status_code == 403
    people.legal.refresh_from_db()
    assert people.legal.sensitivity == RESTRICTED
    assert not events(AuditEvent.Action.SENSITIVITY_CHANGED)


def test_an_unknown_sensitivity_is_refused_before_anything_changes(people, root) -> None:
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    login(root).post(url, access_form(people.legal, sensitivity="public", retention_days="30"))
    people.legal.refresh_from_db()
    assert people.legal.sensitivity == RESTRICTED and people.legal.retention_days is None
    assert not events(AuditEvent.Action.SENSITIVITY_CHANGED)
