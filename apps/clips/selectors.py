"""Reads of the clip library, including the clips a call carries (audio loaded before
the call starts, off the audio path)."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Q

from apps.clips.audio import wav_pcm
from apps.clips.models import Clip
from apps.core.errors import NotFound


def clip_list(*, agent_id: int | None = None):
    """The client's clips, or those an agent can play (its own and the client's)."""
    clips = Clip.objects.select_related("agent")
    if agent_id is not None:
        clips = clips.filter(Q(agent_id=agent_id) | Q(agent__isnull=True))
    return clips.order_by("name", "agent_id")


def clip_get(*, clip_id: int) -> Clip:
    try:
        return Clip.objects.select_related("agent").get(pk=clip_id)
    except (Clip.DoesNotExist, ValueError):
        raise NotFound("No such clip.") from None


def clip_audio_bytes(*, clip: Clip) -> bytes:
    with default_storage.open(clip.audio.name, "rb") as handle:
        return handle.read()


def clips_for_runtime(*, agent_id: int) -> tuple[dict, ...]:
    """Every clip the agent may play, as the voice runtime plays them: {"name", "words",
    "tags", "interruptible", "pcm" (8 kHz 16-bit mono)}. An agent's own clip wins over
    the client's of the same name. A clip whose file cannot be read is left out."""
    chosen: dict[str, Clip] = {}
    for clip in Clip.objects.filter(Q(agent_id=agent_id) | Q(agent__isnull=True)).order_by("agent_id"):
        if clip.name not in chosen or clip.agent_id is not None:
            chosen[clip.name] = clip
    clips = []
    for name, clip in sorted(chosen.items()):
        try:
            pcm = wav_pcm(clip_audio_bytes(clip=clip))
        except Exception:  # noqa: BLE001 - a missing file: the LLM is not offered the clip
            continue
        clips.append({"name": name, "words": clip.words, "tags": list(clip.tags or []),
                      "interruptible": bool(clip.interruptible), "pcm": pcm})
    return tuple(clips)
