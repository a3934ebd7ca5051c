"""The Instagram simulator over real HTTP on free ports: the OAuth flow and token lifetimes by the simulator clock,
/me, media paging, the shapes of generated media (carousels, copyrighted reels, captions), stories and their
expiry, CDN URLs that are signed anew and expire, usage headers and rate-limit refusals, webhook verification and
signed deliveries (to a tiny receiver), and the media objects' keys against ../shared/fixtures/instagram."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.media.sniff import sniff
from trove.simulators.base import JPEG
from trove.simulators.instagram import ALL_MEDIA_FIELDS, InstagramSimulator, shortcode
from trove.simulators.serve import BackgroundServer

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "instagram"
CLIENT_ID, SECRET = "ig-app-id", "ig-app-secret"
REDIRECT = "https://trove.example/oauth/instagram/callback"
SCOPE = "instagram_business_basic,instagram_business_manage_comments"
POSTS = 120
HOUR, DAY = 3600, 86400
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
MEDIA_FIELDS = ALL_MEDIA_FIELDS


# --- harness --------------------------------------------------------------------------------------------------
class Running:
    """A simulator on a free port and a client for it."""

    def __init__(self, sim: InstagramSimulator, url: str) -> None:
        self.sim, self.url = sim, url
        self.http = httpx.Client(base_url=url, timeout=10)

    def authorize(self, **extra: str) -> httpx.Response:
        params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": SCOPE,
                  "state": "st-42", **extra}  # fmt: skip
        return self.http.get("/oauth/authorize", params=params)

    def code(self, **extra: str) -> str:
        answer = self.authorize(**extra)
        assert answer.status_code == 302, answer.text
        return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]

    def exchange_code(self, code: str, redirect_uri: str = REDIRECT, secret: str = SECRET) -> httpx.Response:
        form = {"client_id": CLIENT_ID, "client_secret": secret, "grant_type": "authorization_code",
                "redirect_uri": redirect_uri, "code": code}  # fmt: skip
        return self.http.post("/oauth/access_token", data=form)

    def short_token(self, **extra: str) -> str:
        return self.exchange_code(self.code(**extra)).json()["data"][0]["access_token"]

    def long_token(self, **extra: str) -> str:
        answer = self.http.get(
            "/access_token",
            params={
                "grant_type": "ig_exchange_token",
                "client_secret": SECRET,
                "access_token": self.short_token(**extra),
            },
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def graph(self, path: str, token: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/v23.0{path}", params=params, headers={"Authorization": f"Bearer {token}"})

    def advance(self, seconds: float) -> dict[str, Any]:
        answer = self.http.post("/_sim/clock", json={"advance_seconds": seconds})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def config(self, **settings: Any) -> dict[str, Any]:
        answer = self.http.post("/_sim/config", json=settings)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def all_media(self, token: str, fields: str = MEDIA_FIELDS, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        answer = self.graph("/me/media", token, fields=fields, limit=limit)
        while True:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            items += body["data"]
            if "next" not in body.get("paging", {}):
                return items
            answer = self.http.get(body["paging"]["next"])


def error_of(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    return answer.json()["error"]


def started(sim: InstagramSimulator) -> Iterator[Running]:
    with BackgroundServer(sim.app, free_port()) as server:
        running = Running(sim, server.url)
        yield running
        running.http.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Running, str]]:
    """One simulator for the read-only tests: an account of 120 posts and 3 stories, and its long-lived token."""
    sim = InstagramSimulator(CLIENT_ID, SECRET, seed=7)
    sim.add_account("trove.demo", posts=POSTS, stories=3)
    for running in started(sim):
        yield running, running.long_token()


@pytest.fixture
def fresh() -> Iterator[Running]:
    """A simulator of its own, for the tests that move its clock or change its settings."""
    sim = InstagramSimulator(CLIENT_ID, SECRET, seed=3)
    sim.add_account("trove.demo", posts=12, stories=2)
    yield from started(sim)


class Receiver:
    """A webhook endpoint: answers Meta's verification with the challenge, records every delivery."""

    def __init__(self, verify_token: str = "verify-me") -> None:
        self.verify_token = verify_token
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["GET", "POST"])])

    async def hook(self, request: Request) -> Response:
        if request.method == "GET":
            params = request.query_params
            if params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == self.verify_token:
                return PlainTextResponse(params["hub.challenge"])
            return PlainTextResponse("wrong verify token", status_code=403)
        self.deliveries.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with BackgroundServer(hook.app, free_port()) as server:
        yield hook, f"{server.url}/hook"


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def subscribe(running: Running, callback: str, token: str, fields: str) -> None:
    setup = {
        "callback_url": callback,
        "verify_token": "verify-me",
        "fields": ["comments", "mentions", "story_insights"],
    }
    answer = running.http.post("/_sim/webhooks", json=setup)
    assert answer.json() == {"success": True}, answer.text
    answer = running.http.post(
        "/v23.0/me/subscribed_apps", params={"subscribed_fields": fields}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.json() == {"success": True}, answer.text


# --- OAuth ----------------------------------------------------------------------------------------------------
def test_authorize_redirects_with_the_code_and_state_or_the_denial(fresh: Running) -> None:
    answer = fresh.authorize()
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert not location.fragment, "no #_ : a fragment never reaches a server"
    query = parse_qs(location.query)
    assert set(query) == {"code", "state"} and query["state"] == ["st-42"]

    denied = fresh.authorize(sim_deny="1")
    assert denied.status_code == 302
    assert urlsplit(denied.headers["location"]).query == (
        "error=access_denied&error_reason=user_denied&error_description=Permissions+error&state=st-42"
    )
    refused = fresh.http.get("/oauth/authorize", params={"client_id": "nope", "redirect_uri": REDIRECT})
    assert refused.status_code == 400 and refused.json()["error_message"] == "Invalid platform app"


def test_the_code_exchange_answers_a_short_lived_token_once(fresh: Running) -> None:
    code = fresh.code()
    assert (
        fresh.exchange_code(code, redirect_uri=REDIRECT + "/other")
        .json()["error_message"]
        .startswith("Error validating verification code")
    )
    assert fresh.exchange_code(code, secret="wrong").json() == {
        "error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app",
    }  # fmt: skip
    answer = fresh.exchange_code(code)
    assert answer.status_code == 200
    (data,) = answer.json()["data"]
    assert set(data) == {"access_token", "user_id", "permissions"}
    account = next(iter(fresh.sim.accounts.values()))
    assert data["user_id"] == account.user_id and data["permissions"] == SCOPE
    reused = fresh.exchange_code(code)
    assert reused.status_code == 400
    assert reused.json() == {"error_type": "OAuthException", "code": 400,
                             "error_message": "This authorization code has been used"}  # fmt: skip
    assert fresh.exchange_code("AQnotacode").json()["error_message"] == "Invalid authorization code"
    granted = fresh.exchange_code(fresh.code(sim_grant_scope="instagram_business_basic"))
    assert granted.json()["data"][0]["permissions"] == "instagram_business_basic"


def test_long_lived_tokens_refresh_after_24_hours_and_expire_after_60_days(fresh: Running) -> None:
    short = fresh.short_token()
    assert fresh.graph("/me", short).status_code == 200
    exchanged = fresh.http.get(
        "/access_token", params={"grant_type": "ig_exchange_token", "client_secret": SECRET, "access_token": short}
    )
    assert exchanged.status_code == 200 and "X-App-Usage" in exchanged.headers
    body = exchanged.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 60 * DAY
    long = body["access_token"]
    assert error_of(fresh.graph("/me", short))["code"] == 190, "the short-lived token is spent once exchanged"

    def refresh(token: str) -> httpx.Response:
        return fresh.http.get("/refresh_access_token", params={"grant_type": "ig_refresh_token", "access_token": token})

    young = error_of(refresh(long))
    assert young["code"] == 10 and young["message"] == "Tokens must be at least 24 hours old to be refreshed"
    assert young["type"] == "OAuthException" and young["fbtrace_id"]
    fresh.advance(25 * HOUR)
    refreshed = refresh(long)
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["expires_in"] == 60 * DAY and renewed["access_token"] != long
    assert fresh.graph("/me", long).status_code == 200, "the old token keeps working until its own expiry"

    fresh.advance(59 * DAY)  # the first long-lived token is 60 days and 1 hour old, the refreshed one 59 days
    expired = error_of(fresh.graph("/me", long, fields="username"))
    assert (expired["code"], expired["error_subcode"], expired["type"]) == (190, 463, "OAuthException")
    assert expired["message"].startswith("Error validating access token: Session has expired")
    assert error_of(refresh(long))["code"] == 190
    assert fresh.graph("/me", renewed["access_token"]).status_code == 200
    malformed = error_of(fresh.graph("/me", "IGAAnonsense"))
    assert malformed["code"] == 190 and "error_subcode" not in malformed


def test_revoked_and_scripted_expiry_answer_190(fresh: Running) -> None:
    token = fresh.long_token()
    user_id = next(iter(fresh.sim.accounts))
    fresh.config(revoke_user=user_id)
    revoked = error_of(fresh.graph("/me", token))
    assert (revoked["code"], revoked["error_subcode"]) == (190, 460)
    token = fresh.long_token()
    fresh.config(expire_tokens=True)
    assert error_of(fresh.graph("/me", token))["error_subcode"] == 463


# --- profile and media ----------------------------------------------------------------------------------------
def test_me_returns_the_requested_fields_and_the_app_scoped_id(shared: tuple[Running, str]) -> None:
    running, token = shared
    account = next(iter(running.sim.accounts.values()))
    fields = "user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count"
    me = running.graph("/me", token, fields=fields).json()
    assert set(me) == {"id", *fields.split(",")}
    assert me["id"] != me["user_id"] == account.user_id
    assert me["username"] == "trove.demo" and me["account_type"] == "BUSINESS" and me["media_count"] == POSTS
    assert me["profile_picture_url"].startswith(f"{running.url}/cdn/v/t51.29350-15/")
    assert running.graph("/me", token, fields="username").json() == {"id": me["id"], "username": "trove.demo"}
    assert running.graph("/me", token).json() == {"id": me["id"]}
    unknown = error_of(running.graph("/me/media", token, fields="id,xyz"))
    assert unknown["code"] == 100 and unknown["message"] == (
        "(#100) Tried accessing nonexisting field (xyz) on node type (IGMedia)"
    )
    unversioned = running.http.get("/me", params={"fields": "username", "access_token": token})
    assert unversioned.json()["username"] == "trove.demo", "no version prefix, token as a query parameter"


def test_media_pages_through_every_post_newest_first(shared: tuple[Running, str]) -> None:
    running, token = shared
    account = next(iter(running.sim.accounts.values()))
    pages, answer = [], running.graph("/me/media", token, fields="id,timestamp", limit=50)
    while True:
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        if "next" not in pages[-1]["paging"]:
            break
        next_url = pages[-1]["paging"]["next"]
        assert next_url.startswith(f"{running.url}/v23.0/me/media?")
        assert parse_qs(urlsplit(next_url).query)["access_token"] == [token]
        assert parse_qs(urlsplit(next_url).query)["after"] == [pages[-1]["paging"]["cursors"]["after"]]
        answer = running.http.get(next_url)
    assert [len(page["data"]) for page in pages] == [50, 50, 20]
    assert "previous" not in pages[0]["paging"] and "previous" in pages[-1]["paging"]
    items = [item for page in pages for item in page["data"]]
    expected = sorted(account.media, key=lambda m: m.sort_key(), reverse=True)
    assert [item["id"] for item in items] == [m.id for m in expected]
    stamps = [item["timestamp"] for item in items]
    assert all(TIMESTAMP.match(stamp) for stamp in stamps) and stamps == sorted(stamps, reverse=True)
    assert all(item["id"].isdecimal() for item in items)

    back = running.http.get(pages[-1]["paging"]["previous"]).json()
    assert [item["id"] for item in back["data"]] == [item["id"] for item in pages[1]["data"]]
    assert len(running.graph("/me/media", token, limit=500).json()["data"]) == 100, "limit is capped at 100"
    assert len(running.graph("/me/media", token).json()["data"]) == 25, "limit defaults to 25"
    assert error_of(running.graph("/me/media", token, after="%%%not-a-cursor"))["code"] == 100


def test_generated_posts_have_every_shape(shared: tuple[Running, str]) -> None:
    running, token = shared
    items = running.all_media(token)
    shapes = {(item["media_type"], item["media_product_type"]) for item in items}
    assert shapes == {("IMAGE", "FEED"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "FEED"), ("VIDEO", "REELS")}

    carousels = [item for item in items if item["media_type"] == "CAROUSEL_ALBUM"]
    for carousel in carousels:
        children = carousel["children"]["data"]
        assert 2 <= len(children) <= 10
        media = running.sim.media_index[carousel["id"]]
        assert [child["id"] for child in children] == [c.id for c in media.children], "children in order"
        assert carousel["media_url"].split("?")[0] == children[0]["media_url"].split("?")[0]
        assert "thumbnail_url" not in carousel
        for child in children:
            assert child["media_type"] in {"IMAGE", "VIDEO"} and "caption" not in child and "like_count" not in child
            assert child["timestamp"] <= carousel["timestamp"] and child["permalink"].startswith(
                "https://www.instagram.com/p/"
            )
            if child["media_type"] == "VIDEO":
                assert "/cdn/v/t50.2886-16/" in child["media_url"] and child["media_url"].split("?")[0].endswith(".mp4")
                assert "/cdn/v/t51.29350-15/" in child["thumbnail_url"]
            else:
                assert "thumbnail_url" not in child
    assert any(child["media_type"] == "VIDEO" for c in carousels for child in c["children"]["data"])

    reels = [item for item in items if item["media_product_type"] == "REELS"]
    copyrighted = [reel for reel in reels if "media_url" not in reel]
    assert copyrighted and len(copyrighted) < len(reels) / 3, "about one reel in ten has copyrighted audio"
    for reel in reels:
        assert reel["permalink"] == f"https://www.instagram.com/reel/{reel['shortcode']}/"
        assert "/cdn/v/t51.29350-15/" in reel["thumbnail_url"]
    for item in items:
        if item["media_product_type"] == "FEED":
            assert item["permalink"] == f"https://www.instagram.com/p/{item['shortcode']}/"
        if item["media_type"] == "IMAGE":
            assert "thumbnail_url" not in item and item["media_url"].split("?")[0].endswith(".jpg")

    captions = [item["caption"] for item in items if "caption" in item]
    assert len(captions) < len(items), "some posts have no caption"
    assert any("#" in c for c in captions) and any("@" in c for c in captions) and any("\n" in c for c in captions)
    assert any(any(ord(ch) > 0x2000 for ch in c) for c in captions), "emoji"
    assert any("like_count" not in item for item in items), "some owners hide like counts"
    assert all("comments_count" in item and item["username"] == "trove.demo" for item in items)


def test_media_by_id_children_by_id_and_deleted_media(fresh: Running) -> None:
    token = fresh.long_token()
    items = fresh.all_media(token)
    carousel = next(item for item in items if item["media_type"] == "CAROUSEL_ALBUM")
    one = fresh.graph(f"/{carousel['id']}", token, fields=MEDIA_FIELDS).json()
    assert one["id"] == carousel["id"] and one["children"]["data"][0]["id"] == carousel["children"]["data"][0]["id"]
    child_id = carousel["children"]["data"][1]["id"]
    child = fresh.graph(f"/{child_id}", token, fields="id,media_type,media_url,timestamp").json()
    assert child["id"] == child_id and "media_url" in child
    edge = fresh.graph(f"/{carousel['id']}/children", token, fields="id").json()
    assert [c["id"] for c in edge["data"]] == [c["id"] for c in carousel["children"]["data"]]

    target = items[3]
    file_url = fresh.graph(f"/{target['id']}", token, fields="media_url,thumbnail_url").json()
    file_url = file_url.get("media_url") or file_url["thumbnail_url"]
    assert fresh.http.get(file_url).status_code == 200
    assert fresh.http.delete("/_sim/media", params={"id": target["id"]}).json() == {"success": True}
    gone = error_of(fresh.graph(f"/{target['id']}", token, fields="id,caption"))
    assert (gone["code"], gone["error_subcode"], gone["type"]) == (100, 33, "GraphMethodException")
    assert gone["message"].startswith(f"Unsupported get request. Object with ID '{target['id']}' does not exist")
    assert target["id"] not in {item["id"] for item in fresh.all_media(token, fields="id")}
    assert fresh.http.get(file_url).status_code == 404, "a deleted media's files are gone from the CDN"
    assert error_of(fresh.graph("/17000000000000000", token))["error_subcode"] == 33

    other = fresh.sim.add_account("someone.else", posts=1)
    assert error_of(fresh.graph(f"/{other.media[0].id}", token))["error_subcode"] == 33, "not the token owner's"


def test_stories_vanish_after_24_hours_and_send_their_insights(fresh: Running, receiver: tuple[Receiver, str]) -> None:
    hook, callback = receiver
    token = fresh.long_token()
    subscribe(fresh, callback, token, "comments,story_insights")
    stories = fresh.graph("/me/stories", token, fields=MEDIA_FIELDS).json()["data"]
    assert len(stories) == 2
    account = next(iter(fresh.sim.accounts.values()))
    for story in stories:
        assert story["media_product_type"] == "STORY" and story["media_type"] in {"IMAGE", "VIDEO"}
        assert "like_count" not in story and "comments_count" not in story and "caption" not in story
        assert story["permalink"] == f"https://www.instagram.com/stories/trove.demo/{story['id']}/"
    assert fresh.graph(f"/{stories[0]['id']}", token, fields="id,media_type").status_code == 200

    moved = fresh.advance(DAY)
    assert sorted(moved["expired_stories"]) == sorted(story["id"] for story in stories)
    assert fresh.graph("/me/stories", token).json() == {"data": []}
    assert error_of(fresh.graph(f"/{stories[0]['id']}", token))["error_subcode"] == 33
    insights = [body for body in hook.bodies() if body["entry"][0]["changes"][0]["field"] == "story_insights"]
    assert sorted(b["entry"][0]["changes"][0]["value"]["media_id"] for b in insights) == sorted(
        s["id"] for s in stories
    )
    for headers, body in hook.deliveries:
        assert headers["x-hub-signature-256"] == signature(body)
    entry = insights[0]["entry"][0]
    assert insights[0]["object"] == "instagram" and entry["id"] == account.user_id
    assert set(entry["changes"][0]["value"]) == {
        "media_id", "exits", "replies", "reach", "taps_forward", "taps_back", "impressions",
    }  # fmt: skip
    fresh.advance(HOUR)
    assert len(hook.deliveries) == len(insights), "each story's insights are sent once"


# --- CDN ------------------------------------------------------------------------------------------------------
def test_cdn_urls_are_signed_anew_expire_with_the_clock_and_refuse_bad_hashes(fresh: Running) -> None:
    token = fresh.long_token()
    items = fresh.all_media(token, fields="id,media_type,media_url,thumbnail_url")
    image = next(item for item in items if item["media_type"] == "IMAGE")
    again = fresh.graph(f"/{image['id']}", token, fields="media_url").json()["media_url"]
    first, second = urlsplit(image["media_url"]), urlsplit(again)
    assert first.path == second.path and re.fullmatch(r"/cdn/v/t51\.29350-15/\d+_\d+_\d+_n\.jpg", first.path)
    q1, q2 = parse_qs(first.query), parse_qs(second.query)
    assert q1["_nc_ohc"] != q2["_nc_ohc"] and q1["oh"] != q2["oh"]
    assert re.fullmatch(r"[0-9A-F]{8}", q1["oe"][0])
    for url in (image["media_url"], again):
        answer = fresh.http.get(url)
        assert answer.status_code == 200 and answer.content == JPEG
        assert answer.headers["content-type"] == "image/jpeg"
    video = next(item for item in items if item.get("media_url", "").split("?")[0].endswith(".mp4"))
    mp4 = fresh.http.get(video["media_url"])
    assert mp4.status_code == 200 and sniff(mp4.content) == ("video/mp4", "mp4")
    assert mp4.content[4:8] == b"ftyp" and b"mdat" in mp4.content

    bad = fresh.http.get(image["media_url"].replace(f"oh={q1['oh'][0]}", "oh=" + "0" * 32))
    assert bad.status_code == 403 and bad.text == "Bad URL hash"
    unknown = fresh.sim.cdn_url(fresh.sim.accounts[next(iter(fresh.sim.accounts))].picture_key)
    assert fresh.http.get(unknown.replace("_n.jpg", "9_n.jpg")).status_code == 403, "the path is signed too"
    fresh.sim.files["1_2_3"] = fresh.sim.files[first.path.rsplit("/", 1)[1].removesuffix("_n.jpg")]
    signed_unknown = fresh.sim.cdn_url("1_2_3")
    del fresh.sim.files["1_2_3"]
    assert fresh.http.get(signed_unknown).status_code == 404

    fresh.advance(3 * DAY + 1)
    expired = fresh.http.get(again)
    assert expired.status_code == 403 and expired.text == "URL signature expired"
    renewed = fresh.graph(f"/{image['id']}", token, fields="media_url").json()["media_url"]
    assert fresh.http.get(renewed).status_code == 200
    fresh.config(url_ttl=60)
    short = fresh.graph(f"/{image['id']}", token, fields="media_url").json()["media_url"]
    fresh.advance(61)
    assert fresh.http.get(short).status_code == 403
    served = fresh.http.get("/_sim/stats").json()["files_served"]
    assert sum(served.values()) == 4  # the image twice, the video, the renewed URL


# --- rate limits ----------------------------------------------------------------------------------------------
def usage(answer: httpx.Response) -> tuple[dict[str, int], dict[str, Any] | None]:
    app = json.loads(answer.headers["x-app-usage"])
    business = answer.headers.get("x-business-use-case-usage")
    return app, json.loads(business) if business else None


def test_usage_headers_and_rate_limit_refusals(fresh: Running) -> None:
    token = fresh.long_token()
    user_id = next(iter(fresh.sim.accounts))
    fresh.config(app_limit=1000, account_limit=200)
    answer = fresh.graph("/me", token)
    app, business = usage(answer)
    assert set(app) == {"call_count", "total_cputime", "total_time"} and 0 <= app["call_count"] <= 100
    assert business is not None and list(business) == [user_id]
    (entry,) = business[user_id]
    assert entry["type"] == "instagram" and entry["estimated_time_to_regain_access"] == 0
    assert set(entry) == {"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"}

    fresh.config(account_usage=100)
    assert usage(fresh.graph("/me", token))[1][user_id][0]["call_count"] == 50  # type: ignore[index]
    fresh.config(account_usage=200)
    refused = fresh.graph("/me/media", token)
    error = error_of(refused)
    assert (error["code"], error["error_subcode"], error["is_transient"]) == (17, 2207051, True)
    assert error["message"] == "(#17) User request limit reached"
    entry = usage(refused)[1][user_id][0]  # type: ignore[index]
    assert entry["call_count"] == 100 and 1 <= entry["estimated_time_to_regain_access"] <= 60

    fresh.config(throttle_paths=["/me/media"])
    assert fresh.graph("/me/stories", token).status_code == 200, "only the throttled paths are refused"
    assert error_of(fresh.graph("/me/media", token))["code"] == 17
    fresh.config(throttle_paths=[], rate_limit_code=613)
    assert error_of(fresh.graph("/me", token)) | {"fbtrace_id": "x"} == {
        "message": "Calls to this api have exceeded the rate limit.", "type": "OAuthException",
        "is_transient": True, "code": 613, "fbtrace_id": "x",
    }  # fmt: skip
    fresh.config(rate_limit_code=None, account_usage=0, app_usage=1000)
    app_refused = fresh.graph("/me", token)
    app_error = error_of(app_refused)
    assert (app_error["code"], app_error["message"]) == (4, "Application request limit reached")
    assert usage(app_refused)[0]["call_count"] == 100
    assert usage(app_refused)[1][user_id][0]["estimated_time_to_regain_access"] >= 1  # type: ignore[index]

    fresh.config(account_usage=200)
    fresh.advance(HOUR)  # the hourly windows run on the simulator clock
    answer = fresh.graph("/me", token)
    assert answer.status_code == 200 and usage(answer)[0]["call_count"] == 0


def test_scripted_faults_answer_meta_transient_errors(fresh: Running) -> None:
    token = fresh.long_token()
    fresh.config(fail_next=[500, 503])
    first, second = fresh.graph("/me", token), fresh.graph("/me", token)
    assert (first.status_code, second.status_code) == (500, 503)
    assert first.json()["error"]["code"] == 2 and first.json()["error"]["is_transient"] is True
    assert "x-app-usage" in first.headers
    assert fresh.graph("/me", token).status_code == 200


# --- webhooks -------------------------------------------------------------------------------------------------
def test_webhook_verification_and_signed_comment_deliveries(fresh: Running, receiver: tuple[Receiver, str]) -> None:
    hook, callback = receiver
    token = fresh.long_token()
    wrong = fresh.http.post("/_sim/webhooks", json={"callback_url": callback, "verify_token": "not-it"})
    assert wrong.status_code == 400 and wrong.json()["status"] == 403
    subscribe(fresh, callback, token, "comments,mentions")
    subscribed = fresh.graph("/me/subscribed_apps", token).json()
    assert subscribed["data"][0]["subscribed_fields"] == ["comments", "mentions"]

    media = fresh.all_media(token, fields="id,comments_count,media_product_type")[0]
    answer = fresh.http.post(
        "/_sim/comments", json={"media_id": media["id"], "text": "love this 😍", "from_username": "mira.k"}
    ).json()
    assert answer["delivered"] == 200
    ((headers, raw),) = hook.deliveries
    assert headers["content-type"] == "application/json"
    assert headers["x-hub-signature-256"] == signature(raw)
    body = json.loads(raw)
    account = next(iter(fresh.sim.accounts.values()))
    assert body["object"] == "instagram" and body["entry"][0]["id"] == account.user_id
    change = body["entry"][0]["changes"][0]
    assert change["field"] == "comments"
    assert change["value"]["media"] == {"id": media["id"], "media_product_type": media["media_product_type"]}
    assert change["value"]["text"] == "love this 😍" and change["value"]["from"]["username"] == "mira.k"
    assert change["value"]["id"] == answer["id"] and change["value"]["id"].isdecimal()
    assert fresh.graph(f"/{media['id']}", token, fields="comments_count").json()["comments_count"] == (
        media["comments_count"] + 1
    )

    assert fresh.http.post("/_sim/mentions", json={}).json()["delivered"] == 200
    assert json.loads(hook.deliveries[-1][1])["entry"][0]["changes"][0]["field"] == "mentions"
    unsubscribed = fresh.http.delete("/v23.0/me/subscribed_apps", headers={"Authorization": f"Bearer {token}"})
    assert unsubscribed.json() == {"success": True}
    assert fresh.http.post("/_sim/comments", json={"media_id": media["id"], "text": "x"}).json()["delivered"] is None


def test_sim_deliver_sends_raw_bodies_signed_forged_or_unsigned(fresh: Running, receiver: tuple[Receiver, str]) -> None:
    hook, callback = receiver
    assert fresh.http.post("/_sim/deliver", json={"body": {}}).status_code == 400, "no webhook yet"
    fresh.http.post("/_sim/webhooks", json={"callback_url": callback, "verify_token": "verify-me"})
    payload = {"object": "instagram", "entry": [{"id": "1", "time": 1, "changes": []}]}
    assert fresh.http.post("/_sim/deliver", json={"body": payload}).json() == {"status": 200}
    fresh.http.post("/_sim/deliver", json={"body": payload, "signature": "sha256=" + "ab" * 32})
    fresh.http.post("/_sim/deliver", json={"body": payload, "unsigned": True})
    (signed, body), (forged, _), (unsigned, _) = hook.deliveries
    assert json.loads(body) == payload and signed["x-hub-signature-256"] == signature(body)
    assert forged["x-hub-signature-256"] == "sha256=" + "ab" * 32
    assert "x-hub-signature-256" not in unsigned
    assert fresh.http.delete("/_sim/webhooks").json() == {"success": True}


# --- shapes and determinism -----------------------------------------------------------------------------------
def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    return json.loads(path.read_text())


def fields_of(item: dict[str, Any]) -> str:
    """The `fields` parameter that asks for exactly the keys of a recorded media object."""
    parts = []
    for key, value in item.items():
        if key == "children":
            child_keys = dict.fromkeys(k for child in value["data"] for k in child)
            parts.append("children{" + ",".join(child_keys) + "}")
        else:
            parts.append(key)
    return ",".join(parts)


def test_media_objects_have_the_keys_and_formats_of_the_recorded_payloads(shared: tuple[Running, str]) -> None:
    running, token = shared
    account = next(iter(running.sim.accounts.values()))

    def like(kind: str, product: str, *, video_child: bool = False) -> str:
        return next(
            m.id
            for m in account.media
            if m.media_type == kind
            and m.product == product
            and m.caption is not None
            and not m.likes_hidden
            and (not video_child or any(c.media_type == "VIDEO" for c in m.children))
        )

    carousel = fixture("ig_media_carousel_single.json")
    ours = running.graph(f"/{like('CAROUSEL_ALBUM', 'FEED', video_child=True)}", token, fields=fields_of(carousel))
    ours_body = ours.json()
    assert set(ours_body) == set(carousel)
    video_child = next(c for c in ours_body["children"]["data"] if c["media_type"] == "VIDEO")
    image_child = next(c for c in ours_body["children"]["data"] if c["media_type"] == "IMAGE")
    recorded = {c["media_type"]: c for c in carousel["children"]["data"]}
    assert set(video_child) == set(recorded["VIDEO"]) and set(image_child) == set(recorded["IMAGE"])
    assert ours_body["owner"] == {"id": account.user_id} and ours_body["ig_id"].isdecimal()

    page = fixture("ig_user_media_page1.json")
    image_fields = fields_of(page["data"][0])
    ours_page = running.graph("/me/media", token, fields=image_fields, limit=2).json()
    assert set(ours_page) == set(page) and set(ours_page["paging"]) == set(page["paging"])
    assert set(ours_page["paging"]["cursors"]) == set(page["paging"]["cursors"])
    one = running.graph(f"/{like('IMAGE', 'FEED')}", token, fields=image_fields).json()
    assert set(one) == set(page["data"][0])

    page2 = fixture("ig_user_media_page2_carousel_with_video_child.json")
    for recorded_item in page2["data"]:
        kind = recorded_item["media_type"]
        mine = running.graph(
            f"/{like(kind, 'FEED', video_child=kind == 'CAROUSEL_ALBUM')}", token, fields=fields_of(recorded_item)
        ).json()
        assert set(mine) == set(recorded_item)

    stories = fixture("ig_user_stories_page1.json")
    story_fields = fields_of(stories["data"][0])
    ours_stories = running.graph("/me/stories", token, fields=story_fields, limit=2).json()
    assert set(ours_stories["paging"]) == set(stories["paging"]) and set(ours_stories["paging"]["cursors"]) == {
        "before", "after",
    }  # fmt: skip
    assert all(set(s) == set(stories["data"][0]) for s in ours_stories["data"] if s["media_type"] == "IMAGE")

    webhook = fixture("webhook_story_insights_docs_example.json")[0]
    story = account.stories[0]
    value = running.sim.story_insights(story)
    assert set(value) == set(webhook["entry"][0]["changes"][0]["value"])

    for recorded_item, mine in ((carousel, ours_body), (page["data"][0], one)):
        assert TIMESTAMP.match(recorded_item["timestamp"]) and TIMESTAMP.match(mine["timestamp"])
        assert recorded_item["id"].isdecimal() and mine["id"].isdecimal()
        assert re.search(r"oe=[0-9A-F]{8}", recorded_item["media_url"]) and re.search(
            r"oe=[0-9A-F]{8}", mine["media_url"]
        )


def test_generation_is_deterministic_from_the_seed() -> None:
    def snapshot(seed: int) -> list[tuple[Any, ...]]:
        sim = InstagramSimulator(CLIENT_ID, SECRET, seed=seed)
        account = sim.add_account("trove.demo", posts=30, stories=2)
        return [(account.user_id,)] + [
            (m.id, m.media_type, m.product, m.caption, m.like_count, m.likes_hidden, m.copyrighted,
             [c.id for c in m.children])
            for m in account.media + account.stories
        ]  # fmt: skip

    assert snapshot(5) == snapshot(5)
    assert snapshot(5) != snapshot(6)
    assert shortcode(2626274342904627384) == "CRyZpmrjYC4", "Instagram's shortcode of the fixtures' carousel"


def test_sim_controls_create_edit_and_report(fresh: Running) -> None:
    created = fresh.http.post("/_sim/accounts", json={"username": "second.account", "posts": 5, "stories": 1})
    assert created.status_code == 200
    user_id = created.json()["user_id"]
    assert fresh.http.post("/_sim/accounts", json={"username": "second.account"}).status_code == 409
    token = fresh.long_token(sim_account="second.account")
    assert fresh.graph("/me", token, fields="user_id").json()["user_id"] == user_id

    new = fresh.http.post("/_sim/media", json={"user_id": user_id, "caption": "hello #new", "children": 3}).json()
    assert new["media_type"] == "CAROUSEL_ALBUM" and len(new["children"]["data"]) == 3
    assert fresh.graph("/me/media", token, fields="id", limit=1).json()["data"][0]["id"] == new["id"], "newest first"
    reel = fresh.http.post("/_sim/media", json={"user_id": user_id, "product": "REELS", "copyrighted": True}).json()
    assert reel["media_type"] == "VIDEO" and "media_url" not in reel and "thumbnail_url" in reel
    edited = fresh.http.put("/_sim/media", json={"id": new["id"], "caption": None, "like_count": None}).json()
    assert "caption" not in edited and "like_count" not in edited

    stats = fresh.http.get("/_sim/stats").json()
    assert stats["accounts"][user_id] == {"username": "second.account", "media": 7, "stories_live": 1}
    assert stats["requests"]["me.media"] == 1
    assert fresh.http.get("/_sim/clock").json()["now"] == stats["now"]
