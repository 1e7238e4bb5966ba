"""Client portal: the client's phone numbers (read-only; numbers are set up by the agency)."""
from __future__ import annotations

from django.shortcuts import render

from apps.portal.access import portal_login_required
from apps.telephony.selectors import phone_number_list


@portal_login_required
def phone_number_list_view(request):
    return render(request, "telephony/number_list.html", {"numbers": phone_number_list()})
