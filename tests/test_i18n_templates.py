"""Every string a template shows people goes through translation. A scan of templates/: no server,
no database, no browser."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template.loader import get_template

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))

# Words that read the same in every language: the brand, and the name of a hash.
ALLOWED = ("Enclave", "sha256")
# Attributes people see (a tooltip, a placeholder) or hear (a screen reader's label).
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
# An <input>'s value is its caption only on these; a <button>'s value is sent, never shown.
CAPTIONED_INPUTS = ("submit", "button", "reset")

TRANSLATED = re.compile(
    r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}"
    r"|{%\s*comment\b.*?{%\s*endcomment\s*%}"
    r"|{#.*?#}",
    re.S,
)
TAG = re.compile(r"{%.*?%}", re.S)  # {% translate %} goes with the other tags: it shows no English
VARIABLE = re.compile(r"{{(.*?)}}", re.S)
# {{ title|default:"unknown document" }} shows its English fallback: keep that text for the scan.
DEFAULT_TEXT = re.compile(r"\|default(?:_if_none)?:(?P<q>[\"'])(?P<text>.*?)(?P=q)")
LETTER = re.compile(r"[^\W\d_]")
BLOCK = re.compile(r"{%\s*blocktrans(?:late)?\b.*?%}(.*?){%\s*endblocktrans(?:late)?\s*%}", re.S)


def fallback(variable: re.Match) -> str:
    default = DEFAULT_TEXT.search(variable[1])
    return default["text"] if default else ""


class Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.in_code = 0  # inside <script> or <style>

    def check(self, text: str | None) -> None:
        if text is None:
            return
        rest = text
        for word in ALLOWED:
            rest = rest.replace(word, "")
        if LETTER.search(rest):
            self.found.append(" ".join(text.split()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.in_code += 1
        values = dict(attrs)
        for name in SHOWN_ATTRIBUTES:
            self.check(values.get(name))
        if tag == "input" and values.get("type") in CAPTIONED_INPUTS:
            self.check(values.get("value"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.in_code = max(0, self.in_code - 1)

    def handle_data(self, data: str) -> None:
        if not self.in_code:
            self.check(data)


def untranslated(source: str) -> list[str]:
    """The English a template would show without going through {% translate %} or
    {% blocktranslate %}: text, the attributes above, and |default fallbacks."""
    html = TRANSLATED.sub("", source)
    html = TAG.sub(" ", html)
    html = VARIABLE.sub(fallback, html)
    scan = Scan()
    scan.feed(html)
    scan.close()
    return scan.found


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_show_no_untranslated_text(path: Path) -> None:
    found = untranslated(path.read_text())
    assert not found, f"{path.relative_to(TEMPLATES)} shows untranslated text: {found}"


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_blocktranslate_uses_plain_names(path: Path) -> None:
    # {{ a.b }} or {{ a|f }} inside blocktranslate silently renders as nothing: bind it with `with`.
    for block in BLOCK.findall(path.read_text()):
        for variable in VARIABLE.findall(block):
            assert re.fullmatch(r"\s*\w+\s*", variable), f"{path.name}: {variable!r} in {block!r}"


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_compile(path: Path) -> None:
    get_template(str(path.relative_to(TEMPLATES)))


def test_the_scan_catches_untranslated_text() -> None:
    source = (
        "{% load i18n %}<title>{% block title %}Inbox · Enclave{% endblock %}</title>\n"
        '<h1>{% translate "Hello" %}</h1><p>Goodbye {{ name }}</p>\n'
        '<input type="search" placeholder="Search" aria-label="{% translate "Search" %}">\n'
        '<input type="submit" value="Send">\n'
        '<button name="rating" value="up">{% translate "Up" %}</button>\n'
        '<img src="x.png" alt="A cat">\n'
        '<a title="Open it" href="/">{{ title|default:"untitled" }}</a>\n'
    )
    found = ["Inbox · Enclave", "Goodbye", "Search", "Send", "A cat", "Open it", "untitled"]
    assert untranslated(source) == found


def test_the_scan_passes_translated_text_and_allowed_words() -> None:
    source = (
        '{% load i18n %}{# A comment with words #}<a class="brand" href="/">Enclave</a>\n'
        "{% comment %}More words{% endcomment %}<p>{% blocktranslate trimmed count counter=n %}\n"
        "  {{ counter }} document{% plural %}{{ counter }} documents{% endblocktranslate %}</p>\n"
        '<li{% if x %} class="current"{% endif %} aria-label="{% translate "Pin" %}">\n'
        "  {{ c.title }} · 42</li>\n"
        '<script>const words = "not shown";</script><code>sha256</code>\n'
    )
    assert untranslated(source) == []
