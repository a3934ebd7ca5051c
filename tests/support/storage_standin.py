"""A stand-in for Supabase Storage's HTTP API (the subset Trove uses: upload with upsert, HEAD, signed URLs
and their download), for testing the `supabase` storage backend here, where Supabase cannot run."""

from __future__ import annotations

import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class StorageStandIn:
    def __init__(self, service_key: str) -> None:
        self.service_key = service_key
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.app = Starlette(
            routes=[
                Route("/storage/v1/object/sign/{bucket}/{path:path}", self.sign, methods=["POST"]),
                Route("/storage/v1/object/sign/{bucket}/{path:path}", self.signed_get, methods=["GET"]),
                Route("/storage/v1/object/{bucket}/{path:path}", self.upload, methods=["POST"]),
                Route("/storage/v1/object/{bucket}/{path:path}", self.head, methods=["HEAD"]),
            ]
        )

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.service_key}"

    async def upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"statusCode": "403", "error": "Unauthorized"}, status_code=403)
        key = (request.path_params["bucket"], request.path_params["path"])
        if key in self.objects and request.headers.get("x-upsert") != "true":
            return JSONResponse({"statusCode": "409", "error": "Duplicate"}, status_code=409)
        self.objects[key] = (await request.body(), request.headers.get("content-type", ""))
        return JSONResponse({"Key": "/".join(key)})

    async def head(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=403)
        key = (request.path_params["bucket"], request.path_params["path"])
        return Response(status_code=200 if key in self.objects else 404)

    async def sign(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"statusCode": "403", "error": "Unauthorized"}, status_code=403)
        bucket, path = request.path_params["bucket"], request.path_params["path"]
        if (bucket, path) not in self.objects:
            return JSONResponse({"statusCode": "404", "error": "not_found"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = (bucket, path)
        return JSONResponse({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def signed_get(self, request: Request) -> Response:
        target = self.tokens.get(request.query_params.get("token", ""))
        if target != (request.path_params["bucket"], request.path_params["path"]):
            return JSONResponse({"statusCode": "400", "error": "InvalidJWT"}, status_code=400)
        body, content_type = self.objects[target]
        return Response(body, media_type=content_type)
