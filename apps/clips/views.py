"""Client portal: the clip library. Everyone in the client lists and previews; client
admins upload and delete (through apps.clips.services)."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_get, agent_list
from apps.clips.forms import ClipForm
from apps.clips.selectors import clip_get, clip_list
from apps.clips.services import clip_create, clip_delete
from apps.core.errors import ApplicationError, NotFound
from apps.portal.access import portal_login_required
from apps.portal.forms_errors import form_add_application_error


def _clip_or_404(clip_id: int):
    try:
        return clip_get(clip_id=clip_id)
    except NotFound:
        raise Http404("No such clip.") from None


@portal_login_required
def clip_list_view(request):
    can_edit = request.user.can_edit_client_data(request.tenant)
    agents = list(agent_list())
    form = ClipForm(agents=agents)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only this client's admins can upload clips.")
        form = ClipForm(request.POST, request.FILES, agents=agents)
        if form.is_valid():
            data = form.cleaned_data
            try:
                agent = agent_get(agent_id=data["agent"]) if data["agent"] else None
                clip = clip_create(name=data["name"], words=data["words"], audio=data["audio"].read(),
                                   filename=data["audio"].name, tags=data["tags"],
                                   interruptible=data["interruptible"], agent=agent)
            except ApplicationError as error:
                if error.details.get("field"):
                    error.details[error.details["field"]] = error.message
                form_add_application_error(form, error)
            else:
                messages.success(request, f"Clip {clip.name} uploaded ({clip.duration_ms / 1000:.1f} s).")
                return HttpResponseRedirect(reverse("portal:clips:list"))
    return render(request, "clips/clip_list.html", {"clips": clip_list(), "form": form, "can_edit": can_edit},
                  status=400 if request.method == "POST" else 200)


@portal_login_required
def clip_audio_view(request, clip_id: int):
    """The stored (normalised) clip, for the page's <audio> preview."""
    clip = _clip_or_404(clip_id)
    response = FileResponse(clip.audio.open("rb"), content_type="audio/wav", filename=f"{clip.name}.wav")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@portal_login_required(admin_only=True)
def clip_delete_view(request, clip_id: int):
    clip = _clip_or_404(clip_id)
    name = clip.name
    clip_delete(clip=clip)
    messages.success(request, f"Clip {name} deleted.")
    return HttpResponseRedirect(reverse("portal:clips:list"))
