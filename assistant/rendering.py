"""Model output → safe HTML: Markdown, sanitised to a small set of tags, no links or images,
then citation markers turned into links to sources the answer really has, and each flagged
sentence wrapped in a flag that says why, with the values no source has."""

import re
import secrets
from collections.abc import Iterable
from html import escape

import markdown
import nh3
from django.utils.translation import gettext, gettext_lazy

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
CITATION = re.compile(r"\[(\d{1,2})\]")
MARKDOWN_LEAD = re.compile(r"(?:\s|[>#*+|-]|\d+[.)]\s)*")
UNSUPPORTED = gettext_lazy("No cited passage supports this sentence: check it against the sources.")
MARKDOWN_EXTENSIONS = ["tables", "fenced_code", "sane_lists"]
LIST_ITEM = re.compile(r"( *)([-*+]|\d{1,3}[.)]) ")
FENCE = re.compile(r" {0,3}(```|~~~)")


def note(entry: str | dict) -> tuple[str, str, str]:
    """A flagged sentence (a plain string in records from before values were checked), its
    title and its visible label."""
    if isinstance(entry, str) or not entry.get("values"):
        sentence = entry if isinstance(entry, str) else entry["sentence"]
        return sentence, str(UNSUPPORTED), gettext("not supported by the sources")
    values = {"listed": ", ".join(entry["values"])}
    title = gettext("Not found in the sources: %(listed)s") % values
    return entry["sentence"], title, gettext("not in the sources: %(listed)s") % values


def flag(text: str, flagged: Iterable[str | dict], key: str) -> tuple[str, list[tuple[str, str]]]:
    """Mark each flagged sentence (found in order) with start and end markers numbered after
    its note, leaving list, heading and table marks out. `key` is random per rendering, so text
    the model wrote, even as HTML character references, cannot pass for a marker."""
    notes: list[tuple[str, str]] = []
    cursor = 0
    for entry in flagged:
        sentence, title, label = note(entry)
        sentence = sentence[MARKDOWN_LEAD.match(sentence).end() :]  # type: ignore[union-attr]
        # A table row keeps its outer pipes, or it is no longer a row.
        sentence = sentence.rstrip(" |")
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


def tidy(text: str) -> str:
    """Model Markdown as Python-Markdown reads it: a blank line before a list, table or code
    fence that follows a paragraph line, and lists nested by 2 spaces nested by 4."""
    lines: list[str] = []
    indents: list[int] = []  # of the open list levels
    fenced = False
    for line in text.split("\n"):
        previous = lines[-1] if lines else ""
        starts_block = False
        if FENCE.match(line):
            starts_block, fenced = not fenced, not fenced
        elif fenced:
            pass
        elif item := LIST_ITEM.match(line):
            depth = len(item.group(1))
            while indents and indents[-1] > depth:
                indents.pop()
            if not indents or indents[-1] < depth:
                indents.append(depth)
            line = " " * 4 * (len(indents) - 1) + line.lstrip(" ")
            starts_block = len(indents) == 1 and not LIST_ITEM.match(previous)
            starts_block &= not previous.startswith(" ")
        elif line.lstrip().startswith("|"):
            starts_block = not previous.lstrip().startswith("|")
        if starts_block and previous.strip():
            lines.append("")
        if line.strip() and not line.startswith(" ") and not LIST_ITEM.match(line):
            indents = []
        lines.append(line)
    return "\n".join(lines)


def render_answer(
    text: str, message_id: int, source_numbers: set[int], flagged: Iterable[str | dict] = ()
) -> str:
    key = secrets.token_hex(8)
    text, notes = flag(text, flagged, key)
    html = markdown.markdown(tidy(text), extensions=MARKDOWN_EXTENSIONS)
    html = nh3.clean(html, tags=ALLOWED_TAGS, attributes={})
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
