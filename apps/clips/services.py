"""Writes of the clip library (tenant schema): upload (normalised to 8 kHz mono PCM
WAV through default_storage, under the client's schema name) and delete."""
from __future__ import annotations

import re

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction

from apps.clips.audio import clip_audio_normalise
from apps.clips.models import CLIP_TAGS, Clip
from apps.core.errors import ApplicationError
from apps.tenancy.audit import CURRENT, audit_log_record

CLIP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _clean_tags(tags) -> list[str]:
    if isinstance(tags, str):
        tags = [tag for tag in re.split(r"[,\s]+", tags) if tag]
    tags = [str(tag).strip().lower() for tag in tags or []]
    unknown = sorted(set(tags) - set(CLIP_TAGS))
    if unknown:
        raise ApplicationError(f"Unknown clip tag {', '.join(unknown)}; use any of {', '.join(CLIP_TAGS)}.",
                               details={"field": "tags"})
    return sorted(set(tags), key=CLIP_TAGS.index)


def clip_create(*, name: str, words: str, audio: bytes, filename: str = "", tags=(), interruptible: bool = True,
                agent=None) -> Clip:
    """Check, normalise and store one clip. Refusals (bad name, name taken, no words,
    unknown tag, unreadable / empty / silent / too long audio) raise ApplicationError
    before anything is stored."""
    name = (name or "").strip().lower()
    if not CLIP_NAME.match(name):
        raise ApplicationError("A clip name is 1-64 lowercase letters, digits, '-' or '_', starting with a letter "
                               "or digit (the LLM writes [[clip:<name>]]).", details={"field": "name"})
    words = " ".join((words or "").split())
    if not words:
        raise ApplicationError("Write the exact words of the recording.", details={"field": "words"})
    tags = _clean_tags(tags)
    if Clip.objects.filter(name=name, agent=agent).exists():
        owner = f"agent {agent.name}" if agent is not None else "this client"
        raise ApplicationError(f"A clip named {name!r} already exists for {owner}.", details={"field": "name"})
    clip_audio = clip_audio_normalise(audio, filename=filename)
    stored = default_storage.save(f"clips/{connection.schema_name}/{name}.wav", ContentFile(clip_audio.wav))
    try:
        with transaction.atomic():
            clip = Clip.objects.create(agent=agent, name=name, words=words, tags=tags, interruptible=bool(interruptible),
                                       audio=stored, duration_ms=clip_audio.duration_ms,
                                       original_name=(filename or "")[:255])
            audit_log_record(actor=CURRENT, client=CURRENT, event_type="clip_uploaded", target=clip,
                             changes={"name": {"before": None, "after": name}, "words": {"before": None, "after": words},
                                      "agent": {"before": None, "after": agent.name if agent else None}})
    except Exception:
        default_storage.delete(stored)  # nothing half-stored
        raise
    return clip


def clip_delete(*, clip: Clip) -> None:
    name = clip.audio.name
    with transaction.atomic():
        audit_log_record(actor=CURRENT, client=CURRENT, event_type="clip_deleted", target=clip,
                         changes={"name": {"before": clip.name, "after": None}})
        clip.delete()
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))
