"""The interface speaks the browser's language until the user picks one; the pick is kept on
their record, so it follows them to every browser and session."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from assistant.models import Preference
from tests.conftest import login
from tests.factories import PASSWORD, make_document, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def translated(text: str, language: str) -> str:
    with translation.override(language):
        result = translation.gettext(text)
    assert result != text, f"{text!r} has no {language} translation"
    return result


@pytest.mark.parametrize("language", ["es", "de", "fr"])
def test_the_sign_in_page_speaks_the_browsers_language(client, language: str) -> None:
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5")
    html = page.content.decode()
    assert f'<html lang="{language}">' in html
    assert translated("Sign in", language) in html and ">Sign in<" not in html
    assert page.headers["Content-Language"] == language


def test_a_users_choice_is_kept_on_their_record_and_beats_the_browser() -> None:
    user = make_user("ana")
    phone = login(user)
    response = phone.post(reverse("set_language"), {"language": "de", "next": "/chat/"})
    assert response.status_code == 302 and response.headers["Location"] == "/chat/"
    assert Preference.objects.get(user=user).language == "de"
    # Another browser, asking for English: the user's choice wins once they sign in.
    laptop = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert (
        laptop.post(reverse("login"), {"username": "ana", "password": PASSWORD}).status_code == 302
    )
    page = laptop.get(reverse("chat:index")).content.decode()
    assert '<html lang="de">' in page and translated("Log out", "de") in page
    # Choosing nothing goes back to the browser's language.
    laptop.post(reverse("set_language"), {"language": "", "next": "/chat/"})
    assert Preference.objects.get(user=user).language == ""
    assert '<html lang="en">' in laptop.get(reverse("chat:index")).content.decode()


def test_before_sign_in_the_choice_is_kept_in_a_cookie(client) -> None:
    client.post(reverse("set_language"), {"language": "fr", "next": "/login/"})
    assert '<html lang="fr">' in client.get(reverse("login")).content.decode()
    assert not Preference.objects.exists()


def test_unknown_languages_and_foreign_redirects_are_refused(client) -> None:
    assert client.post(reverse("set_language"), {"language": "xx"}).status_code == 400
    response = client.post(
        reverse("set_language"), {"language": "es", "next": "https://evil.example/"}
    )
    assert response.headers["Location"] == "/"
    assert client.get(reverse("set_language")).status_code == 405


def test_the_scripts_strings_come_in_the_pages_language(client) -> None:
    catalogue = client.get(reverse("jsi18n"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    found = re.search(r'"Answer ready\.": "([^"]+)"', catalogue)
    assert found and found[1] != "Answer ready."


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_dates_are_shown_in_the_pages_language(people, language: str) -> None:
    document = make_document(people.legal, "policy.txt", b"Leave is 27 days.")
    page = login(people.owner).get(
        reverse("ingestion:collection", args=[people.legal.pk]), HTTP_ACCEPT_LANGUAGE=language
    )
    local = timezone.localtime(document.created_at)
    with translation.override(language):
        shown = date_format(local, "SHORT_DATETIME_FORMAT")
    assert shown in page.content.decode()
    if language != "en":
        with translation.override("en"):
            assert date_format(local, "SHORT_DATETIME_FORMAT") != shown
