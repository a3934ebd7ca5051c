"""The OpenAPI document as the service really answers (issue 17): FastAPI's schema, post-processed in one
place. Added here: the two ways to authenticate as `securitySchemes` (both are `Authorization: Bearer`, so
the header parameter FastAPI derives from the dependencies is dropped: OpenAPI ignores an `Authorization`
parameter, and so does every client generator), each operation's `security` from the dependency its route
uses, every error status the route can return with the one `Error` body, 304 and the feed media types for
the feed routes, redirects, and the media route's files and ranges. Statuses a route cannot produce are
not listed (FastAPI's 422 where nothing is validated, a 200 where the route only redirects).

`ERRORS` is the table of what each route's own code refuses with; what follows from the route's shape (its
credentials, its body, its typed parameters) is derived. A route missing from the table is an error in the
tests (tests/integration/test_openapi_spec.py), never a silent gap."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from trove.http.auth import current_user, known_user
from trove.http.read import reader
from trove.http.relay import through_the_relay

JWT = "SupabaseJWT"
API_KEY = "ApiKey"
SECURITY_SCHEMES: dict[str, Any] = {
    JWT: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Supabase access token of a signed-in user (`Authorization: Bearer <jwt>`): the owner,"
        " who reads everything they own and acts on their account.",
    },
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "trove_<prefix>_<secret>",
        "description": "A personal API key made with POST /api/keys (`Authorization: Bearer trove_...`):"
        " read-only, and public mode only (what is visible to everyone on its platform).",
    },
}
# Which credentials a route takes, from the dependency it uses (a route using none is public).
SECURITY_BY_DEPENDENCY: dict[Callable[..., Any], list[dict[str, list[str]]]] = {
    reader: [{JWT: []}, {API_KEY: []}],
    current_user: [{JWT: []}],
}

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every refusal: `detail` says what is wrong; `error` is a stable code, where the route has"
    " one (OAuth, webhooks, media). Validation errors (422) have FastAPI's `HTTPValidationError` body.",
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, for people"},
        "error": {"type": "string", "description": "a stable code for programs (not on every refusal)"},
    },
    "required": ["detail"],
}
HEALTH_SCHEMA: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "properties": {"status": {"enum": ["ok", "degraded"]}, "database": {"type": "string"}},
    "required": ["status", "database"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}, "required": True}}}


BAD_INPUT = "invalid input (a path parameter Postgres cannot take: not a UUID, a NUL character)"
NO_PLATFORM = "no such platform (or it has no OAuth connect)"
NOT_CONFIGURED = "the platform is not configured on this server (client id and secret)"
UNREACHABLE = "the platform could not be reached"
OAUTH_START = "/functions/v1/oauth-{platform}/start"
OAUTH_HANDOFF = "/functions/v1/oauth-{platform}/handoff"
OAUTH_CALLBACK = "/functions/v1/oauth-{platform}/callback"
WEBHOOK_REFUSED = {
    "400": error("the request is not one of the platform's (a malformed event or handshake)"),
    "403": error("not for this application's subscription (a wrong secret, verify token or subscription)"),
    "404": error("no webhook endpoint for this platform"),
}
# Every built-in platform with webhooks authenticates by the secret path segment: without it, only refusals
# (a platform that signs its deliveries instead would add 200 and 400 back here).
WEBHOOK_WITHOUT_SECRET = {**WEBHOOK_REFUSED, "200": None, "400": None}
# The subscription check (hub.* parameters), as the webhook platforms send it.
HUB: list[dict[str, Any]] = [
    {"name": f"hub.{name}", "in": "query", "required": False, "schema": {"type": "string"}, "description": about}
    for name, about in (
        ("mode", "subscribe"),
        ("challenge", "echoed back as hub.challenge"),
        ("verify_token", "the verify token given when subscribing"),
    )
]
RANGE: dict[str, Any] = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "bytes=<first>-<last>: 206 with those bytes (video players seek this way)",
}

# What each route's own code answers besides its success (FastAPI's `responses` are kept for the success).
ERRORS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("GET", "/health"): {
        "200": {"description": "up", "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
        "503": {
            "description": "the database is unavailable",
            "content": {"application/json": {"schema": HEALTH_SCHEMA}},
        },
    },
    ("POST", OAUTH_START): {
        "400": error("redirect_to is not a path of this site, or the platform refused the account (login_hint)"),
        "403": error("handoff links exist on the local stack only"),
        "404": error(NO_PLATFORM),
        "502": error(UNREACHABLE),
        "503": error(NOT_CONFIGURED),
    },
    ("GET", OAUTH_HANDOFF): {
        "200": None,  # it only redirects
        "302": redirect("on to the platform's consent page, the binding cookie set"),
        "400": error("an incomplete, used or expired handoff link"),
        "404": error(NO_PLATFORM + "; or not the local stack"),
        "503": error(NOT_CONFIGURED),
    },
    ("GET", OAUTH_CALLBACK): {
        "200": {"description": "connected again (the account was known)", "content": {"application/json": {}}},
        "201": {"description": "connected: the account and its backfill", "content": {"application/json": {}}},
        "303": redirect("connected, back to the app's redirect_to path"),
        "400": error("refused: a missing, unknown, used or expired state, another browser, no consent, missing scopes"),
        "404": error(NO_PLATFORM),
        "409": error("the platform account is connected to another Trove user"),
        "502": error(UNREACHABLE),
        "503": error(NOT_CONFIGURED),
    },
    ("GET", "/functions/v1/oauth-{platform}/{document}"): {"404": error("no such document for this platform")},
    ("GET", "/functions/v1/webhook-{platform}"): WEBHOOK_WITHOUT_SECRET,
    ("GET", "/functions/v1/webhook-{platform}/{secret}"): WEBHOOK_REFUSED,
    ("POST", "/functions/v1/webhook-{platform}"): WEBHOOK_WITHOUT_SECRET,
    ("POST", "/functions/v1/webhook-{platform}/{secret}"): WEBHOOK_REFUSED,
    ("GET", "/media/{path}"): {
        "200": {
            "description": "the file",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in (
                    "image/*",
                    "video/*",
                    "audio/*",
                    "application/gpx+xml",
                    "application/vnd.garmin.tcx+xml",
                    "application/vnd.ant.fit",
                    "application/gzip",
                    "application/octet-stream",
                )
            },
        },
        "206": {"description": "the requested byte ranges (Range)", "content": {"*/*": {}}},
        "400": {"description": "a malformed Range header", "content": {"text/plain": {"schema": {"type": "string"}}}},
        "403": error("unsigned, or a wrong or expired signature"),
        "404": error("no such media, or media is served by Supabase Storage"),
        "416": {
            "description": "the Range is outside the file",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
    ("GET", "/api/posts/{post_id}/media"): {"400": error(BAD_INPUT), "404": error("no such post of yours")},
    ("GET", "/api/posts"): {"400": error("a bad filter, limit, offset or cursor")},
    ("GET", "/api/feed.json"): {"400": error("a bad filter, limit, offset or cursor")},
    ("GET", "/api/feed.atom"): {"400": error("a bad filter, limit, offset or cursor")},
    ("POST", "/api/keys"): {"400": error("a blank name, or one with control characters")},
    ("GET", "/api/keys"): {},
    ("DELETE", "/api/keys/{key_id}"): {"400": error(BAD_INPUT), "404": error("no such key of yours")},
    ("POST", "/api/sync/{account_id}"): {
        "400": error(BAD_INPUT),
        "404": error("no such account of yours"),
        "409": error("the account must be reconnected before it can sync"),
    },
    ("GET", "/api/sync/{sync_log_id}/status"): {"400": error(BAD_INPUT), "404": error("no such sync of yours")},
    ("POST", "/api/import"): {
        "400": error("an empty file"),
        "413": error("the file is over the import limit (TROVE_IMPORT_MAX_BYTES)"),
        "415": error("a form: send the export file itself as the body"),
    },
    ("GET", "/api/import/{import_id}"): {"400": error(BAD_INPUT), "404": error("no such import of yours")},
    ("POST", "/functions/v1/wake"): {
        "403": error("a missing, wrong or stale X-Trove-Wake-Signature"),
        "404": error("waking through pg_net is not configured here (TROVE_WAKE_SECRET)"),
    },
}
# An export file as the platform gave it: the request body itself.
EXPORT_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
IMPORT_BODY: dict[str, Any] = {
    "description": "the export file as the platform gave it (a ZIP, or a repository CAR); its name may be given"
    " in X-File-Name (UTF-8) or ?name=",
    "required": True,
    "content": {
        "application/octet-stream": EXPORT_BINARY,
        "application/zip": EXPORT_BINARY,
        "application/vnd.ipld.car": EXPORT_BINARY,
    },
}

# The feed routes: one page in three renderings, cached per user with an ETag.
PAGE_SCHEMA: dict[str, Any] = {
    "title": "Page",
    "type": "object",
    "properties": {
        "posts": {"type": "array", "items": {"type": "object"}},
        "next_cursor": {"type": ["string", "null"]},
        "public": {"type": "boolean", "description": "true for an API key: the public view of the archive"},
    },
    "required": ["posts", "next_cursor", "public"],
}
JSON_FEED_SCHEMA: dict[str, Any] = {
    "title": "JSONFeed",
    "type": "object",
    "description": "JSON Feed 1.1 (https://jsonfeed.org/version/1.1)",
    "properties": {"version": {"type": "string"}, "title": {"type": "string"}, "items": {"type": "array"}},
    "required": ["version", "title", "items"],
}
FEEDS: dict[str, tuple[str, dict[str, Any]]] = {
    "/api/posts": ("application/json", {"$ref": "#/components/schemas/Page"}),
    "/api/feed.json": ("application/feed+json", {"$ref": "#/components/schemas/JSONFeed"}),
    "/api/feed.atom": ("application/atom+xml", {"type": "string", "description": "an Atom feed (RFC 4287)"}),
}
CACHE_HEADERS: dict[str, Any] = {
    "ETag": {"schema": {"type": "string"}, "description": "send it back as If-None-Match"},
    "Cache-Control": {"schema": {"type": "string"}},
}
IF_NONE_MATCH: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "the ETag of a page you have: 304 while it is current",
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _parameters(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params + dependant.header_params + dependant.cookie_params
    for dependency in dependant.dependencies:
        yield from _parameters(dependency)


def security_of(route: Any) -> list[dict[str, list[str]]] | None:
    for call in _calls(route.dependant):
        if call in SECURITY_BY_DEPENDENCY:
            return SECURITY_BY_DEPENDENCY[call]
    return None


def validates(route: Any) -> bool:
    """Whether FastAPI can answer 422: a body, or a parameter that is required or more than a string."""
    if route.body_field is not None:
        return True
    for param in _parameters(route.dependant):
        if param.field_info.is_required() or param.field_info.annotation not in (str, str | None):
            return True
    return False


def derived(route: Any) -> dict[str, dict[str, Any]]:
    """What follows from the route's shape: its credentials, its body, its typed parameters."""
    responses: dict[str, dict[str, Any]] = {}
    security = security_of(route)
    if security is not None:
        responses["401"] = error("missing, malformed, expired, unknown or revoked credentials")
    if any(call is through_the_relay for call in _calls(route.dependant)) and "401" not in responses:
        responses["401"] = error("TROVE_RELAY_SECRET is set and the request did not come through the relay")
    if any(call is known_user for call in _calls(route.dependant)):
        responses["403"] = error("a valid token for a user Trove does not know")
    if route.body_field is not None:
        responses["400"] = error("a body that is not JSON Trove can read (nested too deeply)")
    if route.body_field is not None or route.original_route.max_body_size is not None:  # a body it takes
        responses["413"] = {
            "description": "the body is larger than this route takes",
            "content": {"application/json": {"schema": ERROR_REF}, "text/plain": {"schema": {"type": "string"}}},
        }
    return responses


def document(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (FastAPI's, a copy) with the service's real answers (see the module docstring)."""
    components = schema.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas.update({"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA, "JSONFeed": JSON_FEED_SCHEMA})
    for route in iter_route_contexts(app.routes):  # each route with its router's prefix
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            describe(route, method, operation)
    return schema


def describe(route: Any, method: str, operation: dict[str, Any]) -> None:
    path = route.path_format
    operation["operationId"] = route.name  # the endpoint's name: what a generated client calls the method
    parameters = [p for p in operation.get("parameters", []) if p["name"].lower() != "authorization"]
    security = security_of(route)
    if security is not None:
        operation["security"] = security
    responses: dict[str, Any] = operation["responses"]
    if not validates(route):
        responses.pop("422", None)
    responses.update(derived(route))
    for status, response in ERRORS.get((method, path), {}).items():
        if response is None:
            responses.pop(status, None)
        else:
            responses[status] = response
    if path in FEEDS:
        media_type, body = FEEDS[path]
        responses["200"] = {
            "description": "a page of the archive (an API key: its public view)",
            "headers": {**CACHE_HEADERS, "X-Cache": {"schema": {"enum": ["hit", "miss"]}}},
            "content": {media_type: {"schema": body}},
        }
        responses["304"] = {"description": "Not Modified: If-None-Match is current", "headers": CACHE_HEADERS}
        parameters.append(IF_NONE_MATCH)
    if path == "/media/{path}":
        parameters.append(RANGE)
    if method == "GET" and path.startswith("/functions/v1/webhook-"):
        parameters.extend(HUB)
    if method == "POST" and path.startswith("/functions/v1/webhook-"):
        operation["requestBody"] = {
            "description": "the platform's event, as it sends it",
            "content": {"application/json": {"schema": {}}},
        }
    if method == "POST" and path == "/api/import":
        operation["requestBody"] = IMPORT_BODY
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    operation["responses"] = dict(sorted(responses.items()))


def install(app: FastAPI) -> None:
    """`app.openapi` answers the documented schema (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_documented", None) is None:
            app.state.openapi_documented = document(app, copy.deepcopy(generate()))
            app.openapi_schema = app.state.openapi_documented
        documented: dict[str, Any] = app.state.openapi_documented
        return documented

    app.openapi = openapi
