"""A call's variables: built-ins ({{caller.number}}, {{call.direction}}, {{now}} in the
client's time zone), what the pre-call fetch answered and what the LLM extracted.
The placeholder syntax is the graph's (apps.agents.graph, a pure module)."""
from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

from apps.agents.graph import VARIABLE, render, variables_in

__all__ = ["VARIABLE", "render", "variables_in", "now_text", "merge_fetched", "with_defaults"]

PROTECTED = ("caller", "call", "now", "contact")


def now_text(time_zone: str) -> str:
    """"Tuesday 1 December 2026, 14:05 (Europe/Berlin)": what `{{now}}` says."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (KeyError, ValueError):
        zone, time_zone = ZoneInfo("UTC"), "UTC"
    now = datetime.now(zone)
    return f"{now:%A} {now.day} {now:%B %Y, %H:%M} ({time_zone})"


def merge_fetched(variables: dict, fetched: dict) -> dict:
    """The pre-call fetch's answer merged in; it may not overwrite the built-ins."""
    return {**variables, **{key: value for key, value in fetched.items()
                            if key not in PROTECTED and isinstance(key, str)}}


def with_defaults(variables: dict, names) -> dict:
    """Every declared variable present ("" when nothing set it), so rendering a prompt never fails."""
    filled = copy.deepcopy(variables)  # each call its own: a config's dict may be shared
    for name in names:
        current = filled
        parts = name.split(".")
        for part in parts[:-1]:
            if not isinstance(current.get(part), dict):
                if part in current:
                    break
                current[part] = {}
            current = current[part]
        else:
            current.setdefault(parts[-1], "")
    return filled
