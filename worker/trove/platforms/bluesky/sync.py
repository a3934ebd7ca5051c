"""Bluesky's connector for the sync engine. The user's own repository on their PDS is the source of truth:
every post and repost record is read from it (com.atproto.repo.listRecords, 100 a call), so replies, posts
the AppView hides and posts whose threads were deleted are all archived. The AppView then hydrates them
(app.bsky.feed.getPosts, 25 a call) for counts, embed views and CDN links; a record it does not return is
archived all the same, with `view: null`. Reading is public: no token is spent on it.

Backfill walks each collection to its end; a poll reads each collection newest first until it reaches what
the archive has (the newest record key seen), and hydrates the new records plus the newest 25 (their counts
change most). Real time comes from Jetstream (`stream.py`); its events arrive here as `handle_event`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

import httpx

from trove.platforms.base import (
    Account,
    Confirmation,
    ConnectRefused,
    Enrichment,
    InvalidEventError,
    Listing,
    NormalizedPost,
    NotFoundError,
    Page,
    RateLimitReading,
    SyncMode,
    TokenSet,
    TransientError,
    WebhookAction,
)
from trove.platforms.bluesky.client import XrpcError, xrpc_get
from trove.platforms.bluesky.config import BlueskyConfig
from trove.platforms.bluesky.identity import PDS_CACHE, resolve_identity, resolve_pds
from trove.platforms.bluesky.normalize import AT_URI_RE, POST, REPOST, normalize, record_problems
from trove.platforms.bluesky.oauth import BlueskyOAuth

COLLECTIONS = (POST, REPOST)
PAGE_SIZE = 100  # listRecords' maximum
HYDRATE_BATCH = 25  # getPosts' maximum
RECENT_TO_REFRESH = 25  # a poll refreshes the counts of the newest posts (one getPosts call)
MAX_PAGE_RECORDS = 100
FULL_LISTING_EVERY = timedelta(days=1)


def split_uri(uri: Any) -> tuple[str, str, str] | None:
    """(did, collection, rkey) of an AT-URI, or None when it is not one."""
    match = AT_URI_RE.fullmatch(uri) if isinstance(uri, str) else None
    return (match.group(1), match.group(2), match.group(3)) if match else None


def subject_uri(uri: str, value: dict[str, Any]) -> str:
    """The post whose view describes this record: the post itself, or what a repost reposts."""
    if value.get("$type") == REPOST:
        subject = value.get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("uri"), str):
            return str(subject["uri"])
    return uri


class BlueskyConnector:
    platform = "bluesky"
    poll_interval = timedelta(hours=1)  # Jetstream brings changes within a second; polling is the safety net
    detail_keys = ("view",)  # a record arriving without its view (Jetstream) keeps the stored one
    poll_on_event = False  # a Jetstream event carries the record: only its view is fetched
    ephemeral_interval = None  # nothing here vanishes by itself
    enrich_batch = HYDRATE_BATCH  # records that arrived without their views are hydrated 25 a call

    def __init__(self, config: BlueskyConfig | None = None) -> None:
        self.config = config or BlueskyConfig.from_env()
        self.oauth = BlueskyOAuth(self.config)

    async def refresh_token(
        self, http: httpx.AsyncClient, refresh_token: str, binding: dict[str, Any] | None
    ) -> TokenSet:
        return await self.oauth.refresh(http, refresh_token, binding or {})

    def normalize(self, post_data: dict[str, Any]) -> NormalizedPost:
        return normalize(post_data)

    # --- archive -------------------------------------------------------------------------------------
    async def _pds(self, http: httpx.AsyncClient, did: str) -> str:
        """Where the account's repository is now. A DID the directory no longer knows is an account gone;
        any other identity trouble is worth retrying later."""
        try:
            return await resolve_pds(http, did, self.config)
        except ConnectRefused as refused:
            if refused.code == "did_not_found":
                raise NotFoundError(f"{did}: {refused.detail}") from refused
            raise TransientError(f"{did}: {refused.detail}") from refused

    async def fetch_page(
        self, http: httpx.AsyncClient, account: Account, mode: SyncMode, cursor: dict[str, Any] | None
    ) -> Page:
        did = account.platform_user_id
        pds = await self._pds(http, did)
        # A poll reads down to what the archive has, except once a day when it lists everything (records are
        # cheap to list, 100 a call): that is how deletions the stream missed are noticed, however old.
        position = cursor or {"collection": 0, "full": mode == "backfill" or self._full_listing_due(account)}
        index = int(position.get("collection", 0))
        full = bool(position.get("full"))
        collection = COLLECTIONS[index]
        params = {"repo": did, "collection": collection, "limit": PAGE_SIZE, "cursor": position.get("cursor")}
        body, readings = await xrpc_get(
            http, pds, "com.atproto.repo.listRecords", params, window_name="pds", insecure=self.config.insecure_http
        )
        raw = body.get("records")
        raw = raw if isinstance(raw, list) else []
        records = [r for r in raw[:MAX_PAGE_RECORDS] if self._ours(r, did, collection)]
        # A page that says what is gone must be whole: every record ours, none cut off, a list at all.
        clean = isinstance(body.get("records"), list) and len(records) == len(raw)
        watermarks: dict[str, str] = dict(account.sync_state.get("newest_rkey") or {})
        known = watermarks.get(collection)
        rkeys = [split_uri(r["uri"])[2] for r in records]  # type: ignore[index]
        if mode == "poll" and known is not None:
            fresh = [r for r, rkey in zip(records, rkeys, strict=True) if rkey > known]
            reached_known = len(fresh) < len(records) and not full
            recent = RECENT_TO_REFRESH - len(fresh) if position.get("cursor") is None else 0
            hydrate = fresh + [r for r in records if r not in fresh][: max(recent, 0)]
        else:
            reached_known = False
            hydrate = records
        views, more_payloads, view_readings = await self._hydrate(http, hydrate)
        state: dict[str, Any] = {"newest_rkey": watermarks}
        if cursor is None:  # once a sync: the profile, for the pinned post (kept raw like every answer)
            try:
                profile, profile_readings = await self._profile(http, did)
            except TransientError:  # an AppView that will not say (a takedown there, an outage): archive on
                profile, profile_readings = None, []
            if profile is not None:
                more_payloads.append(("actor.getProfile", profile))
                view_readings += profile_readings
                pinned = profile.get("pinnedPost")
                uri = pinned.get("uri") if isinstance(pinned, dict) else None
                state["pinned_post"] = uri if split_uri(uri) is not None else None
        posts: list[NormalizedPost] = []
        for record in hydrate:
            post = self._post(record, pds, views)
            if post is not None:
                posts.append(post)
        if rkeys and (known is None or max(rkeys) > known):
            watermarks[collection] = max(rkeys)
        next_cursor: dict[str, Any] | None
        page_cursor = body.get("cursor")
        more = isinstance(page_cursor, str) and bool(page_cursor) and bool(records)
        if more and not reached_known:
            next_cursor = {"collection": index, "cursor": page_cursor, "full": full}
            if clean:  # an unclean page breaks the chain: the next page says nothing of what is gone either
                next_cursor["listed_down_to"] = min(rkeys)
        elif index + 1 < len(COLLECTIONS):
            next_cursor = {"collection": index + 1, "full": full}
        else:
            next_cursor = None
        if next_cursor is None and full:
            state["full_listing_at"] = datetime.now(UTC).isoformat()
        # Newest first: this page lists every record below the last one the previous page listed (the cursor
        # itself is opaque), down to its own last one, or to the end of the collection when there is no more.
        # Said only when the PDS kept that order: anything else says nothing of what is gone.
        prefix = f"at://{did}/{collection}/"
        above = position.get("listed_down_to")
        ordered = all(a.encode() > b.encode() for a, b in pairwise(rkeys))
        ordered = ordered and (not rkeys or not isinstance(above, str) or rkeys[0].encode() < above.encode())
        listing = (
            Listing(
                prefix,
                frozenset(r["uri"] for r in records),
                from_id=prefix + min(rkeys) if more else None,
                before_id=prefix + above if isinstance(above, str) else None,
            )
            if clean and ordered and (position.get("cursor") is None or isinstance(above, str))
            else None
        )
        return Page(
            f"repo.listRecords:{collection}",
            body,
            posts,
            next_cursor,
            readings + view_readings,
            state,
            more_payloads,
            listing,
        )

    async def _profile(self, http: httpx.AsyncClient, did: str) -> tuple[dict[str, Any], list[RateLimitReading]]:
        return await xrpc_get(
            http,
            self.config.appview_url,
            "app.bsky.actor.getProfile",
            {"actor": did},
            window_name="appview",
            insecure=self.config.insecure_http,
        )

    @staticmethod
    def _full_listing_due(account: Account) -> bool:
        last = account.sync_state.get("full_listing_at")
        try:
            return not isinstance(last, str) or datetime.fromisoformat(last) < datetime.now(UTC) - FULL_LISTING_EVERY
        except ValueError:
            return True

    @staticmethod
    def _ours(record: Any, did: str, collection: str) -> bool:
        """A record of this repo and collection (a PDS answering with another repo's records is ignored)."""
        if not isinstance(record, dict) or not isinstance(record.get("value"), dict):
            return False
        parts = split_uri(record.get("uri"))
        return parts is not None and parts[0] == did and parts[1] == collection and isinstance(record.get("cid"), str)

    def _post(self, record: dict[str, Any], pds: str, views: dict[str, Any]) -> NormalizedPost | None:
        uri, value = record["uri"], record["value"]
        subject = subject_uri(uri, value)
        post_data = {"uri": uri, "cid": record["cid"], "value": value, "view": views.get(subject), "_pds": pds}
        try:
            return normalize(post_data)
        except InvalidEventError:
            return None  # kept raw in the page; the record does not have its lexicon's shape

    async def _hydrate(
        self, http: httpx.AsyncClient, records: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], list[tuple[str, Any]], list[RateLimitReading]]:
        """AppView views of what the records are about, keyed by post URI; the raw answers; rate limits."""
        uris = list(dict.fromkeys(subject_uri(r["uri"], r["value"]) for r in records))
        views: dict[str, Any] = {}
        payloads: list[tuple[str, Any]] = []
        readings: list[RateLimitReading] = []
        for start in range(0, len(uris), HYDRATE_BATCH):
            batch = uris[start : start + HYDRATE_BATCH]
            body, readings = await xrpc_get(
                http,
                self.config.appview_url,
                "app.bsky.feed.getPosts",
                [("uris", uri) for uri in batch],
                window_name="appview",
                insecure=self.config.insecure_http,
            )
            payloads.append(("feed.getPosts", body))
            for view in body.get("posts") or []:
                if isinstance(view, dict) and view.get("uri") in batch:
                    views[view["uri"]] = view
        return views, payloads, readings

    def enrich_cost(self, post_data: dict[str, Any]) -> int:
        return 1

    async def enrich(self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any]) -> Enrichment:
        """A record that arrived without its view (from Jetstream): hydrate it."""
        return (await self.enrich_many(http, account, [post_data]))[0]

    async def enrich_many(
        self, http: httpx.AsyncClient, account: Account, posts: list[dict[str, Any]]
    ) -> list[Enrichment]:
        """Records that arrived without their views, hydrated together (one getPosts call for 25)."""
        owned: list[tuple[int, dict[str, Any]]] = []
        results: list[Enrichment] = [Enrichment([], None, not_owned=True) for _ in posts]
        for index, post_data in enumerate(posts):
            parts = split_uri(post_data.get("uri"))
            if parts is not None and parts[0] == account.platform_user_id and isinstance(post_data.get("value"), dict):
                owned.append((index, post_data))
        if not owned:
            return results
        pds = await self._pds(http, account.platform_user_id)
        records = [{"uri": p["uri"], "cid": p.get("cid"), "value": p["value"]} for _, p in owned]
        views, payloads, readings = await self._hydrate(http, records)
        for number, (index, post_data) in enumerate(owned):
            data = {**post_data, "view": views.get(subject_uri(post_data["uri"], post_data["value"])), "_pds": pds}
            first = number == 0
            try:
                results[index] = Enrichment(payloads if first else [], normalize(data), readings if first else [])
            except InvalidEventError:  # not a record we can keep (never "deleted"): nothing of it is stored
                results[index] = Enrichment(payloads if first else [], None, readings if first else [], not_owned=True)
        return results

    async def refresh_media_url(
        self, http: httpx.AsyncClient, account: Account, post_data: dict[str, Any], media_key: str
    ) -> str | None:
        """Blobs are content-addressed and served by the PDS without expiry: the URL is rebuilt from the CID
        (at the PDS the account lives on now)."""
        pds = await self._pds(http, account.platform_user_id)
        query = urlencode({"did": account.platform_user_id, "cid": media_key})
        return f"{pds}/xrpc/com.atproto.sync.getBlob?{query}"

    # --- Jetstream events ------------------------------------------------------------------------------
    def handle_event(self, event_type: str, payload: dict[str, Any]) -> WebhookAction:
        """A stored Jetstream event: commits of posts and reposts create, update or delete the post; identity
        events bring a new handle; account events say whether the account is active."""
        if event_type == "jetstream.malformed":
            raise InvalidEventError(f"the stream sent a frame that is not a Jetstream event: {payload.get('error')}")
        did = payload.get("did")
        if not isinstance(did, str) or not did.startswith("did:"):
            raise InvalidEventError("the event has no did")
        kind = payload.get("kind")
        if kind == "commit":
            return self._commit_action(did, payload.get("commit"))
        if kind == "identity":
            identity = payload.get("identity")
            handle = identity.get("handle") if isinstance(identity, dict) else None
            if handle is not None and not isinstance(handle, str):
                raise InvalidEventError("identity.handle is not a string")
            return WebhookAction(did, "update_account", username=handle) if handle else WebhookAction(did, "ignore")
        if kind == "account":
            account = payload.get("account")
            if not isinstance(account, dict) or not isinstance(account.get("active"), bool):
                raise InvalidEventError("account.active is missing or not a boolean")
            status = account.get("status")
            reason = status if isinstance(status, str) and status.isalnum() and len(status) <= 32 else None
            return WebhookAction(did, "update_account", active=account["active"], status_reason=reason)
        raise InvalidEventError(f"unknown Jetstream event kind {kind!r}")

    @staticmethod
    def _commit_action(did: str, commit: Any) -> WebhookAction:
        if not isinstance(commit, dict):
            raise InvalidEventError("commit is missing")
        collection, rkey, operation = commit.get("collection"), commit.get("rkey"), commit.get("operation")
        if not isinstance(collection, str) or not isinstance(rkey, str) or not isinstance(operation, str):
            raise InvalidEventError("commit.collection, rkey and operation must be strings")
        if collection not in COLLECTIONS:
            return WebhookAction(did, "ignore")  # a like, a follow: not archived
        uri = f"at://{did}/{collection}/{rkey}"
        if split_uri(uri) is None:
            raise InvalidEventError("commit.rkey is not a record key")
        if operation == "delete":
            return WebhookAction(did, "delete_post", platform_post_id=uri)
        if operation not in ("create", "update"):
            raise InvalidEventError(f"unknown commit operation {operation!r}")
        record, cid = commit.get("record"), commit.get("cid")
        problems = record_problems(collection, record)
        if problems or not isinstance(cid, str):
            raise InvalidEventError(f"{uri} does not have its lexicon's shape: {'; '.join(problems[:5]) or 'no cid'}")
        return WebhookAction(
            did, "refresh_post", platform_post_id=uri, post_stub={"uri": uri, "cid": cid, "value": record}
        )

    async def confirm(self, http: httpx.AsyncClient, account: Account, action: WebhookAction) -> Confirmation:
        """Events are hints: a deletion is believed when the PDS no longer has the record, a new handle when
        the DID document names it (and it resolves back), a status when the PDS reports it."""
        did = account.platform_user_id
        if action.kind == "delete_post":
            parts = split_uri(action.platform_post_id)
            if parts is None or parts[0] != did:
                return Confirmation(False, "the deleted record is not in this account's repository")
            pds = await self._pds(http, did)
            try:
                _, readings = await xrpc_get(
                    http,
                    pds,
                    "com.atproto.repo.getRecord",
                    {"repo": did, "collection": parts[1], "rkey": parts[2]},
                    window_name="pds",
                    insecure=self.config.insecure_http,
                )
            except XrpcError as error:
                if error.name == "RecordNotFound":
                    return Confirmation(True, "the PDS no longer has the record")
                raise
            return Confirmation(False, "the PDS still has the record", readings)
        if action.kind == "update_account":
            PDS_CACHE.invalidate(did)  # the account may have moved too
            if action.username:
                try:  # the DID document names the handle, and the handle resolves back to the DID
                    identity = await resolve_identity(http, did, self.config)
                except ConnectRefused as refused:
                    return Confirmation(False, f"the identity could not be resolved: {refused.detail}")
                if identity.handle != action.username.lower():
                    return Confirmation(False, "the handle is not verified for this DID")
            if action.active is not None:
                pds = await self._pds(http, did)
                status, readings = await xrpc_get(
                    http,
                    pds,
                    "com.atproto.sync.getRepoStatus",
                    {"did": did},
                    window_name="pds",
                    insecure=self.config.insecure_http,
                )
                if status.get("active") is not action.active:
                    return Confirmation(False, "the PDS reports another status", readings)
            return Confirmation(True, "the platform confirms it")
        return Confirmation(False, f"{action.kind} is not something a Bluesky event can ask for")
