"""Model output → safe HTML: Markdown, sanitised to a small set of tags, no links or images,
then citation markers turned into links to sources the answer really has, and sentences that
no cited passage supports wrapped in a flag."""

import re
from collections.abc import Iterable

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
CITATION = re.compile(r"\[(\d{1,2})\]")
# Private-use characters survive Markdown and sanitising; the model's own are removed first.
FLAG_START, FLAG_END = "\ue000", "\ue001"
MARKDOWN_LEAD = re.compile(r"(?:\s|[>#*+-]|\d+[.)]\s)*")
UNSUPPORTED = (
    '<span class="unsupported" title="No cited passage supports this sentence: check it '
    'against the sources.">'
)


def flag(text: str, sentences: Iterable[str]) -> str:
    """Wrap each sentence (found in order) in flag characters, leaving list/heading marks out."""
    text = text.replace(FLAG_START, "").replace(FLAG_END, "")
    cursor = 0
    for sentence in sentences:
        sentence = sentence[MARKDOWN_LEAD.match(sentence).end() :]  # type: ignore[union-attr]
        at = text.find(sentence, cursor)
        if not sentence or at < 0:
            continue
        end = at + len(sentence)
        text = f"{text[:at]}{FLAG_START}{sentence}{FLAG_END}{text[end:]}"
        cursor = end + 2
    return text


def render_answer(
    text: str, message_id: int, source_numbers: set[int], unsupported: Iterable[str] = ()
) -> str:
    html = nh3.clean(markdown.markdown(flag(text, unsupported)), tags=ALLOWED_TAGS, attributes={})
    if FLAG_START in html:
        html = html.replace(FLAG_START, UNSUPPORTED).replace(FLAG_END, "</span>")
        # Re-parse so a flag that crossed inline markup (**bold**) still nests correctly.
        html = nh3.clean(
            html, tags=ALLOWED_TAGS | {"span"}, attributes={"span": {"class", "title"}}
        )

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in source_numbers:
            return match.group(0)
        return f'<a class="cite" href="#src-{message_id}-{n}">[{n}]</a>'

    return CITATION.sub(link, html)
