from django import template

from assistant.batch import jobs

register = template.Library()


@register.filter
def may_run_batch_jobs(user) -> bool:
    return jobs.can_run_batch_jobs(user)
