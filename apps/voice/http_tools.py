"""The client's HTTP tools and the pre-call fetch, as the runtime runs them (no Django).

A tool never crashes a call: a refused request, a bad answer or a timeout becomes an
error result the LLM can talk about ("the booking system did not answer"). Every call
comes back with what the trace keeps: arguments, status, latency and a trimmed answer.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from apps.voice.variables import render

RESPONSE_TRIM_CHARS = 2000  # what the LLM and the trace get of an answer at most
MAX_RESPONSE_BYTES = 1_000_000


@dataclass
class ToolOutcome:
    """`result` goes to the LLM; the rest to the turn trace."""

    result: dict
    status: int | None = None
    error: str = ""
    duration_secs: float = 0.0
    trace: dict = field(default_factory=dict)


def trimmed(value, limit: int = RESPONSE_TRIM_CHARS):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "…"


def pick_fields(answer, paths: list[str]) -> dict:
    """{path: value} of the dotted `paths` in a JSON answer (missing: None)."""
    picked = {}
    for path in paths:
        current = answer
        for part in path.split("."):
            if isinstance(current, dict):
                current = current.get(part)
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                current = None
        picked[path] = current
    return picked


def _tool_url(template: str, arguments: dict, variables: dict) -> tuple[str, set[str]]:
    """The URL with {{parameter}} and call variables filled in (URL-quoted), and the arguments it used."""
    used = {name for name in arguments if "{{" in template and any(
        marker in template for marker in (f"{{{{{name}}}}}", f"{{{{ {name} }}}}"))}
    quoted = {**{key: quote(str(value), safe="") for key, value in arguments.items()},
              **{key: _quote_tree(value) for key, value in variables.items() if key not in arguments}}
    return render(template, quoted), used


def _quote_tree(value):
    if isinstance(value, dict):
        return {key: _quote_tree(item) for key, item in value.items()}
    return quote(str(value), safe="")


async def http_tool_call(tool: dict, arguments: dict, variables: dict, *, session: aiohttp.ClientSession) -> ToolOutcome:
    """Run one HTTP tool (shape: apps.agents.selectors.http_tools_for_runtime)."""
    started = time.monotonic()
    timeout = float(tool.get("timeout_secs") or 5.0)
    url, in_url = _tool_url(tool["url"], arguments, variables)
    rest = {key: value for key, value in arguments.items() if key not in in_url}
    method = tool.get("method", "GET").upper()
    request = {"headers": dict(tool.get("headers") or {})}
    if method in ("GET", "DELETE"):
        request["params"] = {key: value if isinstance(value, str) else json.dumps(value) for key, value in rest.items()}
    else:
        request["json"] = rest
    status = None
    try:
        async with asyncio.timeout(timeout):
            async with session.request(method, url, allow_redirects=False, **request) as response:
                status = response.status
                body = await response.content.read(MAX_RESPONSE_BYTES)
        text = body.decode("utf-8", "replace")
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text
        if status >= 400:
            error = f"HTTP {status}"
            result = {"error": f"The tool answered with an error (HTTP {status}).", "status": status,
                      "response": trimmed(answer)}
        else:
            error = ""
            fields = tool.get("response_fields") or []
            data = pick_fields(answer, fields) if fields and isinstance(answer, dict | list) else trimmed(answer)
            result = {"status": status, "data": data}
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
        result = {"error": f"The tool did not answer within {timeout:g} seconds; tell the caller you could not "
                           "check right now."}
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"request failed: {exc.__class__.__name__}: {exc}"[:300]
        result = {"error": "The tool could not be reached; tell the caller you could not check right now."}
    duration = time.monotonic() - started
    return ToolOutcome(result=result, status=status, error=error, duration_secs=duration,
                       trace={"method": method, "url": url.split("?")[0], "status": status})


async def pre_call_fetch(fetch: dict, payload: dict, *, session: aiohttp.ClientSession) -> ToolOutcome:
    """POST the call's numbers to the client's URL; the JSON object it answers becomes
    call variables (`result["variables"]`). Time-boxed; any failure: no variables."""
    started = time.monotonic()
    timeout = float(fetch.get("timeout_secs") or 2.0)
    status = None
    variables: dict = {}
    error = ""
    try:
        async with asyncio.timeout(timeout):
            async with session.post(fetch["url"], json=payload, allow_redirects=False) as response:
                status = response.status
                body = await response.content.read(MAX_RESPONSE_BYTES)
        if status >= 400:
            error = f"HTTP {status}"
        else:
            answer = json.loads(body or b"null")
            if isinstance(answer, dict):
                variables = answer
            else:
                error = "the answer is not a JSON object"
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"request failed: {exc.__class__.__name__}: {exc}"[:300]
    return ToolOutcome(result={"variables": variables}, status=status, error=error,
                       duration_secs=time.monotonic() - started)
