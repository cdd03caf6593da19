from django import template

from assistant.logs import current_request_id

register = template.Library()


@register.simple_tag
def request_id() -> str:
    """The id of the request being answered (assistant.middleware.request_ids). The 500 page is
    rendered without a context, yet its id is what finds the error's log lines."""
    return current_request_id.get() or ""
