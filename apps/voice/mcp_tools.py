"""A client's MCP servers as a tool source (no Django): Pipecat's MCPClient over streamable
HTTP, connected when the call starts (time-boxed: a server that does not answer offers no
tools, the call goes on), closed when it ends. Tool calls go through the client's text
call (`_call_tool_text`, pinned by apps/voice/tests/test_workflow.py) so each one is traced
and time-boxed like an HTTP tool, and an error goes back to the LLM instead of ending the call."""
from __future__ import annotations

import asyncio
import logging
import time

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema

from apps.voice.http_tools import ToolOutcome, trimmed

logger = logging.getLogger(__name__)

MCP_ERROR_PREFIX = "Error calling mcp tool"  # how MCPClient reports a failed call in its text


class McpSource:
    def __init__(self, server: dict):
        self.server = server
        self.name = server["name"]
        self.timeout = float(server.get("timeout_secs") or 5.0)
        self.tools: list[FunctionSchema] = []
        self._client = None

    async def connect(self) -> ToolOutcome:
        """List the server's tools; the outcome goes to the trace."""
        from mcp.client.session_group import StreamableHttpParameters
        from pipecat.services.mcp_service import MCPClient

        started = time.monotonic()
        self._client = MCPClient(server_params=StreamableHttpParameters(
            url=self.server["url"], headers=dict(self.server.get("headers") or {}), timeout=self.timeout))
        try:
            async with asyncio.timeout(self.timeout):
                await self._client.start()
                schema = await self._client.get_tools_schema()
        except Exception as exc:  # noqa: BLE001 - any failure: no tools from this server, the call goes on
            await self.close()
            return ToolOutcome(result={"tools": []}, error=f"could not list tools: {exc.__class__.__name__}: {exc}"[:300],
                               duration_secs=time.monotonic() - started)
        self.tools = list(schema.standard_tools)
        return ToolOutcome(result={"tools": [tool.name for tool in self.tools]}, duration_secs=time.monotonic() - started)

    async def call(self, name: str, arguments: dict) -> ToolOutcome:
        started = time.monotonic()
        if self._client is None:
            return ToolOutcome(result={"error": f"The tool {name} is not available."}, error="not connected")
        try:
            async with asyncio.timeout(self.timeout):
                text = await self._client._call_tool_text(name, arguments)
        except TimeoutError:
            return ToolOutcome(result={"error": f"The tool did not answer within {self.timeout:g} seconds; tell the "
                                                "caller you could not check right now."},
                               error=f"timed out after {self.timeout:g} s", duration_secs=time.monotonic() - started)
        except Exception as exc:  # noqa: BLE001 - a tool never crashes a call
            text = f"{MCP_ERROR_PREFIX} {name}: {exc}"
        duration = time.monotonic() - started
        if text.startswith(MCP_ERROR_PREFIX) or text == "Sorry, could not call the mcp tool":
            return ToolOutcome(result={"error": "The tool failed; tell the caller you could not check right now."},
                               error=text[:300], duration_secs=duration)
        return ToolOutcome(result={"data": trimmed(text)}, duration_secs=duration)

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except Exception:  # noqa: BLE001 - the server may already be gone
                logger.warning("MCP server %s did not close cleanly", self.name)
            self._client = None
