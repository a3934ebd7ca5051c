"""A stand-in for Supabase Storage's HTTP API (the subset Trove uses through storage3: multipart upload with
upsert, object info, signed URLs and their download), for testing the `supabase` storage backend here, where
Supabase cannot run. Errors have Storage's shape: {"statusCode", "error", "message"}."""

from __future__ import annotations

import secrets

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def storage_error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": str(status), "error": error, "message": message}, status_code=status)


class StorageStandIn:
    def __init__(self, service_key: str) -> None:
        self.service_key = service_key
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.fail_uploads = 0  # answer this many uploads with a 503
        self.app = Starlette(
            routes=[
                Route("/storage/v1/object/sign/{bucket}/{path:path}", self.sign, methods=["POST"]),
                Route("/storage/v1/object/sign/{bucket}/{path:path}", self.signed_get, methods=["GET"]),
                Route("/storage/v1/object/info/{bucket}/{path:path}", self.info, methods=["GET"]),
                Route("/storage/v1/object/{bucket}/{path:path}", self.upload, methods=["POST"]),
            ]
        )

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.service_key}"

    async def upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return storage_error(403, "Unauthorized", "invalid signature")
        if self.fail_uploads > 0:
            self.fail_uploads -= 1
            return storage_error(503, "ServiceUnavailable", "try again later")
        key = (request.path_params["bucket"], request.path_params["path"])
        if key in self.objects and request.headers.get("x-upsert") != "true":
            return storage_error(409, "Duplicate", "The resource already exists")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return storage_error(400, "InvalidRequest", "no file in the form")
        self.objects[key] = (await upload.read(), upload.content_type or "")
        return JSONResponse({"Key": "/".join(key), "Id": secrets.token_hex(8)})

    async def info(self, request: Request) -> Response:
        if not self._authorized(request):
            return storage_error(403, "Unauthorized", "invalid signature")
        key = (request.path_params["bucket"], request.path_params["path"])
        if key not in self.objects:
            return storage_error(404, "not_found", "Object not found")
        body, content_type = self.objects[key]
        return JSONResponse({"name": key[1], "size": len(body), "content_type": content_type})

    async def sign(self, request: Request) -> Response:
        if not self._authorized(request):
            return storage_error(403, "Unauthorized", "invalid signature")
        bucket, path = request.path_params["bucket"], request.path_params["path"]
        if (bucket, path) not in self.objects:
            return storage_error(404, "not_found", "Object not found")
        token = secrets.token_urlsafe(16)
        self.tokens[token] = (bucket, path)
        return JSONResponse({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def signed_get(self, request: Request) -> Response:
        target = self.tokens.get(request.query_params.get("token", ""))
        if target != (request.path_params["bucket"], request.path_params["path"]):
            return storage_error(400, "InvalidJWT", "invalid signature")
        body, content_type = self.objects[target]
        return Response(body, media_type=content_type)
