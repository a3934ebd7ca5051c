"""The HTTP stack's ceiling for bench_http_stack.py: the same framework (FastAPI on uvicorn, as `trove serve`)
answering GET /api/posts with fixed bytes (a real page of Trove's), nothing else. Arguments: port, the page's
file, and the number of processes (as `trove serve --processes`, on a socket bound the same way)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
from uvicorn.supervisors import Multiprocess

from trove.http.log_redaction import listening_socket

BODY = Path(os.environ["BARE_BODY"]).read_bytes() if "BARE_BODY" in os.environ else b""
app = FastAPI()


@app.get("/api/posts")
async def posts() -> Response:
    return Response(BODY, media_type="application/json")


if __name__ == "__main__":
    os.environ["BARE_BODY"] = sys.argv[2]  # for the processes uvicorn starts, which import this module afresh
    port, processes = int(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if processes == 1:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        config = uvicorn.Config("bare_app:app", host="127.0.0.1", port=port, log_level="warning", workers=processes)
        Multiprocess(config, sockets=[listening_socket("127.0.0.1", port)]).run()
