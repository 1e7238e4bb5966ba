"""`{% qa_section call %}`: the QA section of the portal's call page."""
from django import template

from apps.quality.selectors import qa_result_for_call
from apps.quality.suite_selectors import call_replay_latest

register = template.Library()


@register.inclusion_tag("quality/_call_section.html", takes_context=True)
def qa_section(context, call):
    request = context.get("request")
    user = getattr(request, "user", None)
    can_rerun = bool(user and request and user.can_edit_client_data(request.tenant))
    return {"call": call, "qa": qa_result_for_call(call_id=call.pk), "can_rerun": can_rerun,
            "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("quality/_replay_section.html", takes_context=True)
def replay_section(context, call):
    """"Re-run on draft": the latest replay of this call's caller turns, side by side with the call."""
    request = context.get("request")
    user = getattr(request, "user", None)
    can_replay = bool(user and request and user.can_edit_client_data(request.tenant))
    agent = call.agent
    return {"call": call, "replay": call_replay_latest(call_id=call.pk), "can_replay": can_replay,
            "has_draft": bool(agent is not None and agent.draft_graph is not None),
            "csrf_token": context.get("csrf_token")}
