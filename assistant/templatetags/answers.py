from django import template
from django.utils.safestring import SafeString, mark_safe

from assistant.rendering import render_answer

register = template.Library()


def grounding(message) -> dict:
    record = getattr(message, "query", None)
    return (record.grounding if record is not None else None) or {}


@register.simple_tag
def answer_html(message) -> SafeString:
    numbers = {s["n"] for s in message.sources if not s.get("withheld")}
    unsupported = grounding(message).get("unsupported", [])
    html = render_answer(message.content, message.pk, numbers, unsupported)
    return mark_safe(html)  # noqa: S308 (sanitised)


@register.simple_tag
def cited_numbers(message) -> list[int]:
    return grounding(message).get("cited", [])
