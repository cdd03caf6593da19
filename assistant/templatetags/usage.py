from django import template

from assistant import usage as usage_module

register = template.Library()


@register.filter
def may_view_usage(user) -> bool:
    return usage_module.may_view(user)
