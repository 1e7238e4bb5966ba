"""/api/v1/clips: this client's clip library (upload, list, audio, delete)."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from django.http import FileResponse
from ninja import File, Form, Router
from ninja.files import UploadedFile

from apps.agents.selectors import agent_get
from apps.clips.schemas import ClipOut
from apps.clips.selectors import clip_get, clip_list
from apps.clips.services import clip_create, clip_delete

router = Router(tags=["clips"])


@router.get("", response=list[ClipOut])
def clips_list(request, agent_id: int | None = None):
    """Every clip, or those one agent may play (its own and the client's)."""
    return list(clip_list(agent_id=agent_id))


@router.post("", response={201: ClipOut})
def clips_upload(request, audio: UploadedFile = File(...), name: str = Form(...), words: str = Form(...),
                 tags: str = Form(""), interruptible: bool = Form(True), agent_id: int | None = Form(None)):
    """Upload a WAV or MP3 (at most 30 s), stored as 8 kHz mono 16-bit PCM; `tags` comma-separated
    (greeting, confirmation, hold, transition, apology, closing, other). 400 names the problem."""
    agent = agent_get(agent_id=agent_id) if agent_id else None
    return 201, clip_create(name=name, words=words, audio=audio.read(), filename=audio.name or "", tags=tags,
                            interruptible=interruptible, agent=agent)


@router.get("/{int:clip_id}", response=ClipOut)
def clips_get(request, clip_id: int):
    return clip_get(clip_id=clip_id)


@router.get("/{int:clip_id}/audio", openapi_extra={
    "responses": {200: {"description": "The stored clip: 8 kHz mono 16-bit PCM WAV.", "content": {"audio/wav": {}}}}})
def clips_audio(request, clip_id: int):
    clip = clip_get(clip_id=clip_id)
    return FileResponse(clip.audio.open("rb"), content_type="audio/wav", filename=f"{clip.name}.wav")


@router.delete("/{int:clip_id}", response={204: None})
def clips_delete(request, clip_id: int):
    clip_delete(clip=clip_get(clip_id=clip_id))
    return 204, None
