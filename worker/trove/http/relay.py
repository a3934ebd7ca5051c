"""Routes the Edge Functions relay (supabase/functions/: oauth-<platform>, webhook-<platform>) check that the
request came through the relay when TROVE_RELAY_SECRET is set: the relay sends it in X-Trove-Relay-Secret, so
a service deployed behind the relays answers nobody else on those URLs. Unset (the local stack, a service
the platforms reach directly), nothing is checked. The wake endpoint is not relayed: it checks its own
signature (trove/http/wake.py)."""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException, Request

RELAY_SECRET_HEADER = "X-Trove-Relay-Secret"


async def through_the_relay(request: Request) -> None:
    expected = os.environ.get("TROVE_RELAY_SECRET", "")
    if not expected:
        return
    given = request.headers.get(RELAY_SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, f"this URL answers through the Edge Function relay only (a missing or wrong {RELAY_SECRET_HEADER})"
        )
