"""The HTTP stack's ceiling for bench_http_stack.py: the same framework (FastAPI on uvicorn, one process, as
`trove serve`) answering GET /api/posts with fixed bytes (a real page of Trove's), nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

BODY = Path(sys.argv[2]).read_bytes()
app = FastAPI()


@app.get("/api/posts")
async def posts() -> Response:
    return Response(BODY, media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
