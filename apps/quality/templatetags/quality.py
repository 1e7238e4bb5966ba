"""`{% qa_section call %}`: the QA section of the portal's call page."""
from django import template

from apps.quality.selectors import qa_result_for_call

register = template.Library()


@register.inclusion_tag("quality/_call_section.html", takes_context=True)
def qa_section(context, call):
    request = context.get("request")
    user = getattr(request, "user", None)
    can_rerun = bool(user and request and user.can_edit_client_data(request.tenant))
    return {"call": call, "qa": qa_result_for_call(call_id=call.pk), "can_rerun": can_rerun,
            "csrf_token": context.get("csrf_token")}
