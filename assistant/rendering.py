"""Model output → safe HTML: Markdown, sanitised to a small set of tags, no links or images,
then citation markers turned into links to sources the answer really has."""

import re

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
CITATION = re.compile(r"\[(\d{1,2})\]")


def render_answer(text: str, message_id: int, source_numbers: set[int]) -> str:
    html = nh3.clean(markdown.markdown(text), tags=ALLOWED_TAGS, attributes={})

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in source_numbers:
            return match.group(0)
        return f'<a class="cite" href="#src-{message_id}-{n}">[{n}]</a>'

    return CITATION.sub(link, html)
