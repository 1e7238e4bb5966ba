"""A double that serves from a background thread with its own event loop, so a busy test loop does
not slow it down: subclasses write `start_async` (bind, set `self.port`) and `stop_async`."""
from __future__ import annotations

import asyncio
import threading


class BackgroundLoopDouble:
    thread_name = "double"

    def _background_init(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()

    async def start_async(self) -> None:
        raise NotImplementedError

    async def stop_async(self) -> None:
        raise NotImplementedError

    def start(self):
        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start_async())
            self._ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop_async())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
