"""Every string the code marks for translation is translated in every language's catalogue.

The marked strings are gathered the way `make messages` gathers them, but with Babel's
extractors (so this runs without GNU gettext): Python modules, templates (through Django's own
templatize, which makemessages uses) and our scripts. A string added to the code and not to the
catalogues, or left untranslated or fuzzy in one, fails here."""

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_javascript, extract_python
from babel.messages.pofile import read_po
from django.conf import settings
from django.utils.translation.template import templatize

pytestmark = pytest.mark.embedded

ROOT = Path(settings.BASE_DIR)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
}
LANGUAGES = [code for code, _name in settings.LANGUAGES]


def marked(path: Path, extract) -> set[str]:
    source = path.read_text()
    if path.suffix == ".html":
        # Python-like text for xgettext; its indentation is the template's, which would upset
        # Python's tokenizer, so each line is dedented.
        source = "\n".join(
            line.lstrip() for line in templatize(source, origin=str(path)).split("\n")
        )
    found = extract(io.BytesIO(source.encode()), KEYWORDS, [], {})
    ids = set()
    for _line, function, message, _comments in found:
        message = message if isinstance(message, tuple) else (message,)
        text = message[1] if function.startswith(("pgettext", "npgettext")) else message[0]
        if text is not None:  # gettext(variable): its strings are marked where they are written
            ids.add(text)
    return ids


def sources(domain: str) -> dict[str, set[str]]:
    if domain == "djangojs":
        files = [(p, extract_javascript) for p in (ROOT / "static" / "enclave").glob("*.js")]
    else:
        python = [
            p
            for package in ("assistant", "ingestion")
            for p in (ROOT / package).rglob("*.py")
            if "migrations" not in p.parts
        ]
        templates = list((ROOT / "templates").rglob("*.html"))
        files = [(p, extract_python) for p in python + templates]
    return {str(path.relative_to(ROOT)): marked(path, extract) for path, extract in files}


def catalogue(language: str, domain: str):
    path = ROOT / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
    assert path.exists(), f"{path} is missing: run `make messages` and translate it"
    with path.open("rb") as f:
        return read_po(f, locale=language)


@pytest.mark.parametrize("domain", ["django", "djangojs"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(language: str, domain: str) -> None:
    entries = {
        m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue(language, domain) if m.id
    }
    missing = {
        f"{file}: {text!r}"
        for file, ids in sources(domain).items()
        for text in ids
        if text not in entries
    }
    assert not missing, (
        f"not in locale/{language}/{domain}.po (run `make messages`):\n"
        + "\n".join(sorted(missing))
    )
    untranslated = [
        key
        for key, m in entries.items()
        if m.fuzzy or not all(m.string if isinstance(m.string, tuple) else (m.string,))
    ]
    assert not untranslated, f"untranslated or fuzzy in {language}/{domain}: {untranslated}"


def test_the_checker_sees_a_string_no_catalogue_has(tmp_path) -> None:
    template = tmp_path / "t.html"
    template.write_text('{% load i18n %}<p>{% translate "A sentence nobody translated" %}</p>')
    script = tmp_path / "t.js"
    script.write_text('el.textContent = gettext("Another new sentence");')
    assert marked(template, extract_python) == {"A sentence nobody translated"}
    assert marked(script, extract_javascript) == {"Another new sentence"}
    entries = {m.id for m in catalogue("es", "django")}
    assert "A sentence nobody translated" not in entries
