"""A scenario's success criteria (apps/quality/criteria.schema.json): checked when a scenario
is saved, judged against a finished conversation. Pure: no database, no network."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

from apps.core.errors import ApplicationError

POLITE_PHRASES = ("bye", "thank", "have a great", "have a nice", "take care")
# How a conversation can end (apps.voice.session's end reasons, plus the test's own).
ENDED_BY_AGENT = "agent_ended"
ENDED_BY_CALLER = "caller_hung_up"
TRANSFERRED = "transfer"
OUT_OF_TURNS = "max_turns"
ERROR = "error"


@cache
def criteria_schema() -> dict:
    return json.loads((Path(__file__).with_name("criteria.schema.json")).read_text())


def criteria_validate(criteria) -> list[dict]:
    """The criteria as stored, or ApplicationError naming the first problem."""
    if isinstance(criteria, str):
        try:
            criteria = json.loads(criteria or "[]")
        except json.JSONDecodeError as error:
            raise ApplicationError(f"The criteria are not valid JSON: {error.msg} (line {error.lineno}).",
                                   details={"criteria": "invalid JSON"}) from None
    validator = jsonschema.Draft202012Validator(criteria_schema())
    problems = sorted(validator.iter_errors(criteria), key=lambda e: list(e.absolute_path))
    if problems:
        problem = problems[0]
        where = "/".join(str(part) for part in problem.absolute_path)
        if problem.validator == "oneOf" and isinstance(problem.instance, dict):
            kinds = [branch["properties"]["type"]["const"] for branch in criteria_schema()["items"]["oneOf"]]
            kind = problem.instance.get("type")
            message = (f"unknown criterion type {kind!r}: one of {', '.join(kinds)}" if kind not in kinds
                       else f"a {kind} criterion needs {_needs(kind)} and nothing else")
        else:
            message = problem.message
        raise ApplicationError(f"Criterion {where or '(all)'}: {message}.", details={"criteria": message})
    return criteria


def _needs(kind: str) -> str:
    for branch in criteria_schema()["items"]["oneOf"]:
        if branch["properties"]["type"]["const"] == kind:
            required = [name for name in branch["required"] if name != "type"]
            optional = [name for name in branch["properties"] if name not in branch["required"]]
            text = ", ".join(f"`{name}`" for name in required) or "no field"
            return text + (f" (optionally {', '.join(f'`{n}`' for n in optional)})" if optional else "")
    return "its fields"


@dataclass
class Conversation:
    """A finished test conversation, as the criteria see it."""

    transcript: list[dict]  # {"speaker": "agent"|"caller", "text", "node", "tool_calls", "first_text_ms"}
    end_reason: str
    transferred_to: str = ""
    variables: dict = field(default_factory=dict)

    @property
    def agent_lines(self) -> list[dict]:
        return [line for line in self.transcript if line["speaker"] == "agent"]

    @property
    def caller_lines(self) -> list[dict]:
        return [line for line in self.transcript if line["speaker"] == "caller"]

    @property
    def tool_calls(self) -> list[dict]:
        return [call for line in self.agent_lines for call in line.get("tool_calls") or []]


def _same(expected, actual) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().lower() == actual.strip().lower()
    return expected == actual


def judge(criterion: dict, conversation: Conversation) -> tuple[bool, str]:
    """(passed, what was seen) for one criterion."""
    kind = criterion["type"]
    if kind in ("tool_called", "tool_not_called"):
        calls = [call for call in conversation.tool_calls if call["name"] == criterion["name"]]
        if kind == "tool_not_called":
            return (not calls, f"{criterion['name']} was called {len(calls)} time(s)"
                    + (f" with {calls[0]['arguments']}" if calls else ""))
        wanted = criterion.get("arguments") or {}
        matching = [call for call in calls
                    if all(_same(value, (call.get("arguments") or {}).get(key)) for key, value in wanted.items())]
        if matching:
            return True, f"{criterion['name']} called with {matching[0]['arguments']}"
        if calls:
            return False, f"{criterion['name']} was called with {calls[0]['arguments']}, not {wanted}"
        called = sorted({call["name"] for call in conversation.tool_calls})
        return False, f"{criterion['name']} was never called (called: {', '.join(called) or 'no tool'})"
    if kind == "variable_extracted":
        value = conversation.variables.get(criterion["name"])
        if value in (None, ""):
            return False, f"{criterion['name']} was not extracted"
        if "equals" in criterion and not _same(criterion["equals"], value):
            return False, f"{criterion['name']} is {value!r}, not {criterion['equals']!r}"
        return True, f"{criterion['name']} = {value!r}"
    if kind == "transferred":
        if conversation.end_reason != TRANSFERRED:
            return False, f"the call was not transferred (it ended: {conversation.end_reason})"
        if criterion.get("to") and criterion["to"] != conversation.transferred_to:
            return False, f"transferred to {conversation.transferred_to}, not {criterion['to']}"
        return True, f"transferred to {conversation.transferred_to}"
    if kind == "ended_politely":
        if conversation.end_reason not in (ENDED_BY_AGENT, ENDED_BY_CALLER):
            return False, f"the conversation did not end (it stopped: {conversation.end_reason})"
        spoken = [line["text"] for line in conversation.agent_lines if line["text"]]
        last = spoken[-1] if spoken else ""
        phrases = criterion.get("phrases") or POLITE_PHRASES
        if any(phrase.lower() in last.lower() for phrase in phrases):
            return True, f"the agent's last line: {last!r}"
        return False, f"the agent's last line is not a polite goodbye: {last!r}"
    if kind == "max_turns":
        turns = len(conversation.caller_lines)
        return turns <= criterion["value"], f"the caller needed {turns} line(s) (at most {criterion['value']})"
    if kind == "latency":
        slow = [(position, line["first_text_ms"]) for position, line in enumerate(conversation.agent_lines)
                if line.get("first_text_ms") is not None and line["first_text_ms"] > criterion["max_ms"]]
        if slow:
            return False, f"agent line {slow[0][0]} took {slow[0][1]} ms (at most {criterion['max_ms']} ms)"
        worst = max((line.get("first_text_ms") or 0 for line in conversation.agent_lines), default=0)
        return True, f"slowest reply {worst} ms"
    if kind in ("agent_said", "agent_not_said"):
        text = criterion["text"].lower()
        line = next((line["text"] for line in conversation.agent_lines if text in line["text"].lower()), None)
        if kind == "agent_said":
            return line is not None, (f"said: {line!r}" if line is not None else f"the agent never said {criterion['text']!r}")
        return line is None, (f"the agent said {line!r}" if line is not None else f"never said {criterion['text']!r}")
    if kind == "reached_node":
        nodes = [line.get("node") for line in conversation.agent_lines]
        return criterion["node"] in nodes, f"nodes visited: {', '.join(dict.fromkeys(n for n in nodes if n))}"
    raise ApplicationError(f"Unknown criterion type {kind!r}.")


def judge_all(criteria: list[dict], conversation: Conversation) -> list[dict]:
    results = []
    for index, criterion in enumerate(criteria):
        passed, detail = judge(criterion, conversation)
        results.append({"index": index, "type": criterion["type"], "criterion": criterion, "passed": passed,
                        "detail": detail})
    return results


def describe(criterion: dict) -> str:
    """One criterion in words, for pages."""
    kind = criterion.get("type")
    rest = {key: value for key, value in criterion.items() if key != "type"}
    return kind + (" " + json.dumps(rest, ensure_ascii=False) if rest else "")
