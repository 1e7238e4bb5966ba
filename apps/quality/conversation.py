"""A test persona talks to an agent in text (apps.voice.text_session), and a traced call's
caller turns are replayed against another version. No Django: the services hand in the
agent's configuration, its LLM service and the persona's chat function."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from apps.quality.criteria import ENDED_BY_CALLER, ERROR, OUT_OF_TURNS
from apps.voice.config import VoiceConfig
from apps.voice.text_session import AgentTurn, TextSession

# The persona ends the call by putting this in its line (the persona prompt tells it so).
HANG_UP = "[hang up]"
_HANG_UP = re.compile(r"\[\s*hang[\s_-]*up\s*\]", re.IGNORECASE)

PERSONA_PROMPT = """You are role-playing a person who phones a business and talks to its voice agent. \
This is a test: stay in character from first word to last.
Persona: {name}
Your goal: {goal}
Your mood: {mood}
What you know (use it when asked, do not volunteer all of it at once):
{facts}
How you talk: {style}
Answer with only the words you say next: one or two short spoken sentences, no stage directions, \
no quotes. When your goal is met, or the agent cannot help, say goodbye and end your line with \
"[hang up]"."""


def persona_prompt(persona) -> str:
    return PERSONA_PROMPT.format(
        name=persona.name, goal=persona.goal.strip(), mood=persona.mood.strip() or "neutral",
        facts=persona.facts.strip() or "(nothing in particular)",
        style=persona.speaking_style.strip() or "plainly, like a person on the phone")


def _line(speaker: str, text: str, turn: AgentTurn | None = None) -> dict:
    line = {"speaker": speaker, "text": text}
    if turn is not None:
        line.update(node=turn.node, tool_calls=turn.tool_calls, first_text_ms=turn.first_text_ms,
                    error=turn.error)
    return line


@dataclass
class TestConversation:
    transcript: list[dict] = field(default_factory=list)
    end_reason: str = ""
    transferred_to: str = ""
    variables: dict = field(default_factory=dict)
    error: str = ""


PersonaChat = Callable[[list[dict]], Awaitable[str]]


async def persona_conversation(*, config: VoiceConfig, llm, persona_system: str, persona_chat: PersonaChat,
                               opening_line: str = "", max_turns: int = 10) -> TestConversation:
    """The persona and the agent take turns until one of them ends the call or the persona
    has said `max_turns` lines. `persona_chat(messages)` answers the persona's next line
    (the agent's lines are its "user" messages)."""
    session = TextSession(config=config, llm=llm)
    outcome = TestConversation()
    persona_messages = [{"role": "system", "content": persona_system}]
    try:
        opening = await session.start()
        if opening.text or opening.tool_calls:
            outcome.transcript.append(_line("agent", opening.text, opening))
            persona_messages.append({"role": "user", "content": opening.text})
        for turn_number in range(max_turns):
            if turn_number == 0 and opening_line.strip():
                said = opening_line.strip()
            else:
                said = (await persona_chat(persona_messages)).strip()
            hangs_up = bool(_HANG_UP.search(said))
            said = _HANG_UP.sub("", said).strip()
            if said:
                outcome.transcript.append(_line("caller", said))
                persona_messages.append({"role": "assistant", "content": said})
                reply = await session.say(said)
                outcome.transcript.append(_line("agent", reply.text, reply))
                persona_messages.append({"role": "user", "content": reply.text})
                if reply.error:
                    outcome.error, outcome.end_reason = reply.error, ERROR
                    break
            if session.ended:
                outcome.end_reason = session.end_reason
                break
            if hangs_up:
                outcome.end_reason = ENDED_BY_CALLER
                break
        else:
            outcome.end_reason = OUT_OF_TURNS
    finally:
        outcome.transferred_to = session.transferred_to
        outcome.variables = session.variables
        await session.close()
    return outcome


@dataclass
class ReplayOutcome:
    turns: list[dict] = field(default_factory=list)
    end_reason: str = ""


async def replay_conversation(*, config: VoiceConfig, llm, caller_turns: list[dict],
                              keep_pace: bool = False) -> ReplayOutcome:
    """`caller_turns`: [{"index", "user_text", "at_secs", "bot_text", "node"}] of the recorded call, in order.
    Each caller line goes to the new version as it was transcribed; with `keep_pace` the replay waits as
    long between lines as the caller did (from one turn's start to the next)."""
    session = TextSession(config=config, llm=llm)
    outcome = ReplayOutcome()
    try:
        opening = await session.start()
        outcome.turns.append({"index": -1, "at_secs": 0.0, "user_text": "", "original_bot_text": "",
                              "original_node": "", "replay_bot_text": opening.text, "replay_node": opening.node,
                              "replay_tool_calls": opening.tool_calls, "replay_error": opening.error})
        previous_at = 0.0
        for turn in caller_turns:
            row = {"index": turn["index"], "at_secs": turn.get("at_secs"), "user_text": turn["user_text"],
                   "original_bot_text": turn.get("bot_text", ""), "original_node": turn.get("node", ""),
                   "replay_bot_text": "", "replay_node": "", "replay_tool_calls": [], "replay_error": ""}
            if session.ended:
                row["replay_error"] = f"not replayed: the new version had ended the call ({session.end_reason})"
            elif turn["user_text"]:
                if keep_pace and turn.get("at_secs") is not None:
                    await asyncio.sleep(max(0.0, min(30.0, turn["at_secs"] - previous_at)))
                    previous_at = turn["at_secs"]
                reply = await session.say(turn["user_text"])
                row.update(replay_bot_text=reply.text, replay_node=reply.node, replay_tool_calls=reply.tool_calls,
                           replay_error=reply.error)
            outcome.turns.append(row)
        outcome.end_reason = session.end_reason
    finally:
        await session.close()
    for row in outcome.turns:
        row["differs"] = row["index"] >= 0 and " ".join(row["original_bot_text"].split()) != " ".join(
            row["replay_bot_text"].split())
    return outcome
