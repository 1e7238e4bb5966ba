"""Client portal: the client's phone numbers (set up by the agency); client admins choose the agent that
answers each one when the agency allows it."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_list
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.telephony.selectors import phone_number_list
from apps.telephony.services import phone_number_assign_agent


@portal_login_required
def phone_number_list_view(request):
    can_assign = settings.PORTAL_CLIENTS_ASSIGN_NUMBERS and request.user.can_edit_client_data(request.tenant)
    return render(request, "telephony/number_list.html", {
        "numbers": phone_number_list(), "can_assign": can_assign, "agents": agent_list() if can_assign else (),
    })


@require_POST
@portal_login_required(admin_only=True)
def phone_number_agent_view(request, number_id: int):
    raw = request.POST.get("agent", "")
    try:
        agent_id = int(raw) if raw else None
    except ValueError:
        agent_id = -1  # not an agent id: refused below as "No such agent."
    try:
        number = phone_number_assign_agent(client=request.tenant, acting_user=request.user, number_id=number_id,
                                           agent_id=agent_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{number.number} is answered by {number.agent.name if number.agent else 'no agent'}.")
    return HttpResponseRedirect(reverse("portal:numbers:list"))
