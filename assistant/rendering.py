"""Model output → safe HTML: Markdown, sanitised to a small set of tags, no links or images,
then citation markers turned into links to sources the answer really has, and each flagged
sentence wrapped in a flag that says why, with the values no source has."""

import re
import secrets
from collections.abc import Iterable
from html import escape

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
CITATION = re.compile(r"\[(\d{1,2})\]")
MARKDOWN_LEAD = re.compile(r"(?:\s|[>#*+-]|\d+[.)]\s)*")
UNSUPPORTED = "No cited passage supports this sentence: check it against the sources."


def note(entry: str | dict) -> tuple[str, str, str]:
    """A flagged sentence (a plain string in records from before values were checked), its
    title and its visible label."""
    if isinstance(entry, str) or not entry.get("values"):
        sentence = entry if isinstance(entry, str) else entry["sentence"]
        return sentence, UNSUPPORTED, "not supported by the sources"
    listed = ", ".join(entry["values"])
    return entry["sentence"], f"Not found in the sources: {listed}", f"not in the sources: {listed}"


def flag(text: str, flagged: Iterable[str | dict], key: str) -> tuple[str, list[tuple[str, str]]]:
    """Mark each flagged sentence (found in order) with start and end markers numbered after
    its note, leaving list/heading marks out. `key` is random per rendering, so text the model
    wrote, even as HTML character references, cannot pass for a marker."""
    notes: list[tuple[str, str]] = []
    cursor = 0
    for entry in flagged:
        sentence, title, label = note(entry)
        sentence = sentence[MARKDOWN_LEAD.match(sentence).end() :]  # type: ignore[union-attr]
        at = text.find(sentence, cursor)
        if not sentence or at < 0:
            continue
        end = at + len(sentence)
        n = len(notes)
        start_mark, end_mark = f"\ue000{key}s{n}\ue001", f"\ue000{key}e{n}\ue001"
        text = f"{text[:at]}{start_mark}{sentence}{end_mark}{text[end:]}"
        cursor = end + len(start_mark) + len(end_mark)
        notes.append((title, label))
    return text, notes


def render_answer(
    text: str, message_id: int, source_numbers: set[int], flagged: Iterable[str | dict] = ()
) -> str:
    key = secrets.token_hex(8)
    text, notes = flag(text, flagged, key)
    html = nh3.clean(markdown.markdown(text), tags=ALLOWED_TAGS, attributes={})
    if notes:

        def mark(match: re.Match[str]) -> str:
            title, label = notes[int(match.group(2))]
            if match.group(1) == "s":
                return f'<span class="unsupported" title="{escape(title)}">'
            return f'</span> <span class="flag">{escape(label)}</span>'

        html = re.sub(f"\ue000{key}([se])(\\d+)\ue001", mark, html)
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
