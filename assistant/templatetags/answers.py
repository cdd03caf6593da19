from django import template
from django.utils.safestring import SafeString, mark_safe

from assistant.rendering import render_answer

register = template.Library()


@register.simple_tag
def answer_html(message) -> SafeString:
    numbers = {s["n"] for s in message.sources if not s.get("withheld")}
    return mark_safe(render_answer(message.content, message.pk, numbers))  # noqa: S308 (sanitised)
