"""Running an ASGI app (a simulator or the HTTP service) on a local port, in a thread or in the foreground."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import uvicorn


class BackgroundServer:
    """uvicorn in a daemon thread; `with BackgroundServer(app, port) as server: server.url`."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1") -> None:
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(self.config)
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_forever(app: Any, port: int, host: str = "127.0.0.1") -> None:
    uvicorn.run(app, host=host, port=port, log_level="info")
