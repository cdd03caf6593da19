from django import template

from assistant import feedback as feedback_module
from assistant.models import Feedback

register = template.Library()


@register.simple_tag(takes_context=True)
def feedback_of(context: template.Context, message) -> Feedback | None:
    """The viewer's own feedback on an answer, if any."""
    user = context.get("user")
    if message.query_id is None or user is None or not user.is_authenticated:
        return None
    return Feedback.objects.filter(record_id=message.query_id, user=user).first()


@register.filter
def may_review_feedback(user) -> bool:
    return feedback_module.may_review(user)


@register.simple_tag
def feedback_reasons() -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in Feedback.Reason.choices]
