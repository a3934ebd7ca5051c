"""Instagram end to end through real processes: the simulator over real HTTP (Instagram Login, the Graph API,
its CDN with expiring signed URLs, signed webhook deliveries), the HTTP service, a worker process, real
Postgres."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from tests.instagram_harness import APP_SECRET, connect, instagram_stack, subscribe_webhooks, user
from tests.worker_harness import query, running_worker, scalar, wait_for, wait_for_log

from trove.simulators.instagram import InstagramSimulator


@pytest.fixture
def small(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with instagram_stack(db_url, monkeypatch, posts=40, stories=2) as running:
        yield running


def connected(stack: dict[str, Any], name: str = "alice") -> tuple[str, str]:
    """The simulator's account connected for `name`: (account id, the backfill's sync log id)."""
    _, headers = user(stack["db"], name)
    done = connect(stack, headers)
    assert done.status_code == 201, done.text
    return done.json()["account_id"], done.json()["sync_log_id"]


def sim_post(stack: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{stack['sim_url']}{path}", json=body, timeout=30.0)
    assert response.status_code == 200, response.text
    return dict(response.json())


def execute(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql, params)


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wait_media_settled(db_url: str, timeout: float = 120.0) -> None:
    wait_for(
        lambda: (
            scalar(db_url, "select count(*) from public.media_downloads where status in ('pending', 'downloading')")
            == 0
        ),
        timeout,
        "the media to be copied",
    )


def test_connect_and_backfill_every_shape_with_media_and_stories(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with instagram_stack(db_url, monkeypatch, posts=520, stories=3) as stack:
        sim: InstagramSimulator = stack["sim"]
        account, log_id = connected(stack)
        row = query(
            db_url,
            "select platform_user_id, username, status::text, token_expires_at > now() + interval '50 days',"
            " token_refresh_at between now() + interval '50 days' and now() + interval '54 days',"
            " metadata ->> 'account_type' from public.connected_accounts where id = %s",
            (account,),
        )[0]
        assert row == (stack["account"].user_id, "trove.demo", "active", True, True, "BUSINESS")
        env = {**stack["env"], "TROVE_MEDIA_DIR": str(tmp_path / "media")}
        with running_worker(env, tmp_path / "worker.log"):
            assert wait_for_log(db_url, log_id, timeout=240) == "success"
            wait_media_settled(db_url)
        expected = {m.id for m in stack["account"].media if not m.deleted}
        feed = {r[0] for r in query(db_url, "select platform_post_id from public.posts where content_type <> 'story'")}
        assert feed == expected and len(feed) == 520
        stories = {
            r[0] for r in query(db_url, "select platform_post_id from public.posts where content_type = 'story'")
        }
        assert stories == {m.id for m in stack["account"].stories}, "the live stories, read on their own lane"
        kinds = dict(query(db_url, "select content_type::text, count(*) from public.posts group by 1"))
        assert kinds["post"] > 0 and kinds["reel"] > 0 and kinds["story"] == 3
        # Every page went raw to ingested_items: one item per media page (50 per call) and per stories page.
        pages = dict(query(db_url, "select event_type, count(*) from public.ingested_items group by 1"))
        assert pages["media"] == sim.requests["me.media"] == 11
        assert pages["stories"] == sim.requests["me.stories"]
        # Carousels keep their children in order; each file keyed by its id, not its signed URL.
        carousel = next(m for m in stack["account"].media if m.media_type == "CAROUSEL_ALBUM")
        keys = [
            r[0]
            for r in query(
                db_url,
                "select md.media_key from public.post_media as pm join public.media_downloads as md"
                " on md.id = pm.media_download_id join public.ingested_posts as ip on ip.id = pm.ingested_post_id"
                " where ip.platform_post_id = %s order by pm.position",
                (carousel.id,),
            )
        ]
        expected_keys = []
        for child in carousel.children:
            expected_keys.append(child.id)
            if child.media_type == "VIDEO":
                expected_keys.append(f"{child.id}:thumbnail")
        assert keys == expected_keys
        # A reel with copyrighted audio: kept, its video recorded unavailable with the reason.
        muted = next(m for m in stack["account"].media if m.copyrighted)
        assert scalar(db_url, "select count(*) from public.posts where platform_post_id = %s", (muted.id,)) == 1
        status, error = query(
            db_url, "select status::text, error from public.media_downloads where media_key = %s", (muted.id,)
        )[0]
        assert status == "unavailable" and "copyrighted audio" in error
        # Everything else was copied, once per file.
        assert scalar(db_url, "select count(*) from public.media_downloads where status = 'failed'") == 0
        copied = query(db_url, "select storage_path from public.media_downloads where status = 'downloaded'")
        assert len(copied) > 520 and all((tmp_path / "media" / path).exists() for (path,) in copied)
        assert all(count == 1 for count in sim.files_served.values()), "no file downloaded twice"


def test_refused_connects_store_nothing(small: dict[str, Any]) -> None:
    sim: InstagramSimulator = small["sim"]
    _, headers = user(small["db"], "alice")
    denied = connect(small, headers, sim_deny="1")
    assert (denied.status_code, denied.json()["error"]) == (400, "access_denied")
    narrow = connect(small, headers, sim_grant_scope="instagram_business_manage_comments")
    assert narrow.status_code == 400 and narrow.json()["error"] == "missing_scope", narrow.text
    personal = sim.add_account(username="just.me", account_type="PERSONAL")
    refused = connect(small, headers, sim_account=personal.username)
    assert (refused.status_code, refused.json()["error"]) == (400, "personal_account")
    assert "professional" in refused.json()["detail"] and "Download your information" in refused.json()["detail"]
    assert scalar(small["db"], "select count(*) from public.connected_accounts") == 0
    # The account already belongs to another Trove user.
    assert connect(small, headers).status_code == 201
    _, bob = user(small["db"], "bob")
    taken = connect(small, bob)
    assert (taken.status_code, taken.json()["error"]) == (409, "already_connected")


def test_stories_are_archived_while_the_feed_is_rate_limited(small: dict[str, Any], tmp_path: Path) -> None:
    db_url = small["db"]
    # Instagram refuses the media list (the account's hourly window is full for it) but not the stories.
    sim_post(small, "/_sim/config", {"throttle_paths": ["/me/media"], "account_usage": 10**7})
    account, log_id = connected(small)
    with running_worker({**small["env"], "TROVE_MEDIA_DIR": str(tmp_path / "m")}, tmp_path / "worker.log"):
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.posts where content_type = 'story'") == 2,
            60,
            "the stories",
        )
        # The usage headers said the hour is spent: the backfill waits for it instead of being refused.
        wait_for(
            lambda: scalar(db_url, "select status::text from public.sync_logs where id = %s", (log_id,)) == "queued",
            60,
            "the backfill to be deferred",
        )
        assert scalar(db_url, "select count(*) from public.posts where content_type <> 'story'") == 0
        assert scalar(db_url, "select run_after > now() from public.sync_requests where sync_log_id = %s", (log_id,)), (
            "resumes when access returns, not before"
        )
        assert scalar(db_url, "select status::text from public.connected_accounts where id = %s", (account,)) == (
            "active"
        )
        # The story media were copied within the story's lifetime, the feed still waiting.
        wait_media_settled(db_url)
        assert scalar(db_url, "select count(*) from public.media_downloads where status = 'downloaded'") >= 2
        # Our own budget: the usage headers are in it, and bulk work stops before Instagram refuses.
        used = scalar(db_url, "select max(used) from public.rate_limit_budgets where platform = 'instagram'")
        assert used == 100


def test_tokens_are_refreshed_before_they_lapse_and_a_lapsed_one_asks_to_reconnect(
    small: dict[str, Any], tmp_path: Path
) -> None:
    db_url = small["db"]
    account, log_id = connected(small)
    env = {**small["env"], "TROVE_MEDIA_DIR": str(tmp_path / "m")}
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id, timeout=120) == "success"
        # Quiet first: a media copy meeting an expired URL would renew a due token itself, before the job does.
        wait_media_settled(db_url)
        old_token = scalar(db_url, "select access_token from public.connected_accounts where id = %s", (account,))
        # 53 days later, idle: the hourly job finds the token due and renews it (Instagram allows it at 24 h).
        sim_post(small, "/_sim/clock", {"advance_seconds": 53 * 86400})
        execute(db_url, "update public.connected_accounts set token_refresh_at = now() - interval '1 minute'")
        assert scalar(db_url, "select trove_private.enqueue_token_refreshes()") == 1
        refresh_log = scalar(db_url, "select id from public.sync_logs where sync_type = 'token_refresh'")
        assert wait_for_log(db_url, str(refresh_log), timeout=60) == "success"
        token, renew_in = query(
            db_url,
            "select access_token, token_refresh_at - now() from public.connected_accounts where id = %s",
            (account,),
        )[0]
        assert token != old_token and renew_in.days >= 50
        assert small["sim"].requests.get("refresh_access_token") == 1
        # Instagram no longer accepts the token (the user changed the password): 190, reconnect.
        sim_post(small, "/_sim/config", {"revoke_user": small["account"].user_id})
        manual = scalar(db_url, "select trove_private.enqueue_sync(%s, 'manual')", (account,))
        assert wait_for_log(db_url, str(manual), timeout=60) == "failed"
    status, message = query(
        db_url, "select status::text, error_message from public.connected_accounts where id = %s", (account,)
    )[0]
    assert status == "token_expired" and "190" in message
    assert scalar(db_url, "select kind from public.notifications where account_id = %s", (account,)) == (
        "reauthorization_required"
    )
    assert scalar(db_url, "select count(*) from public.posts") == 42, "the archive stays"


def test_signed_comment_webhook_is_stored_once_and_linked_and_forgeries_store_nothing(
    small: dict[str, Any], tmp_path: Path
) -> None:
    db_url = small["db"]
    subscribed = subscribe_webhooks(small)
    assert subscribed.returncode == 0, subscribed.stderr
    hook = f"{small['url']}/functions/v1/webhook-instagram"
    # Meta's verification: the challenge as plain text, only with our verify token.
    wrong = httpx.get(hook, params={"hub.mode": "subscribe", "hub.challenge": "123", "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    _, log_id = connected(small)
    body = json.dumps({"object": "instagram", "entry": [{"id": "1", "time": 1, "changes": []}]}).encode()
    for headers in (
        {},
        {"X-Hub-Signature-256": sign(body, "not-the-secret")},
        {"X-Hub-Signature-256": sign(body + b" ")},
        {"X-Hub-Signature-256": "sha1=" + "0" * 40},
    ):
        refused = httpx.post(hook, content=body, headers={"Content-Type": "application/json", **headers})
        assert (refused.status_code, refused.json()["error"]) == (403, "invalid_signature")
    forged = sim_post(small, "/_sim/deliver", {"body": {"object": "instagram"}, "signature": "sha256=" + "0" * 64})
    assert forged["status"] == 403
    huge = httpx.post(hook, content=b"{" + b" " * 70_000 + b"}", headers={"X-Hub-Signature-256": sign(b"x")})
    assert huge.status_code == 413
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'webhook'") == 0
    with running_worker({**small["env"], "TROVE_MEDIA_DIR": str(tmp_path / "m")}, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id, timeout=120) == "success"
        media = small["account"].media[0]
        before = scalar(db_url, "select count(*) from public.engagement_history")
        comment = sim_post(small, "/_sim/comments", {"media_id": media.id, "text": "Lovely!", "from_username": "bo"})
        assert comment["delivered"] == 200
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.post_interactions") == 1, 60, "the comment's record"
        )
        kind, post_id, author, text = query(
            db_url, "select kind, platform_post_id, author_handle, text_content from public.post_interactions"
        )[0]
        assert (kind, post_id, author, text) == ("comment", media.id, "bo", "Lovely!")
        # The event also refreshes the post: its comment count moves and its engagement history grows.
        wait_for(lambda: scalar(db_url, "select count(*) from public.engagement_history") > before, 60, "the new count")
        # A retried delivery (same body) is stored once.
        stored = scalar(db_url, "select payload from public.ingested_items where source = 'webhook'")
        again = json.dumps(stored).encode()
        assert httpx.post(hook, content=again, headers={"X-Hub-Signature-256": sign(again)}).status_code == 200
        assert scalar(db_url, "select count(*) from public.ingested_items where source = 'webhook'") == 1
        # Malformed but signed: a clear 400, nothing stored.
        for bad in (b"not json", b'{"object": "page", "entry": []}', b'{"object": "instagram", "entry": [1]}'):
            answer = httpx.post(hook, content=bad, headers={"X-Hub-Signature-256": sign(bad)})
            assert answer.status_code == 400 and answer.json()["detail"], bad
        # A story ends: Instagram sends its insights, kept as a record of the archived story.
        story = small["account"].stories[0].id
        assert scalar(db_url, "select count(*) from public.posts where platform_post_id = %s", (story,)) == 1
        sim_post(small, "/_sim/clock", {"advance_seconds": 25 * 3600})
        wait_for(
            lambda: (
                scalar(
                    db_url,
                    "select count(*) from public.post_interactions where kind = 'insights' and platform_post_id = %s",
                    (story,),
                )
                == 1
            ),
            60,
            "the story's insights",
        )
        assert scalar(db_url, "select deleted_on_platform from public.posts where platform_post_id = %s", (story,)) is (
            False
        ), "a story that ended is not a deletion"
        # A comment on a media that no longer exists: the event is applied, the detail finds nothing, no post.
        gone = small["account"].media[-1]
        assert httpx.delete(f"{small['sim_url']}/_sim/media", params={"id": gone.id}, timeout=10.0).status_code == 200
        late = json.dumps(
            {"object": "instagram", "entry": [{"id": small["account"].user_id, "time": 9, "changes": [
                {"field": "comments", "value": {"from": {"id": "2", "username": "late"},
                 "media": {"id": gone.id, "media_product_type": "FEED"}, "id": "777", "text": "too late"}}]}]}
        ).encode()  # fmt: skip
        assert httpx.post(hook, content=late, headers={"X-Hub-Signature-256": sign(late)}).status_code == 200
        wait_for(
            lambda: scalar(
                db_url, "select deleted_on_platform from public.posts where platform_post_id = %s", (gone.id,)
            ),
            60,
            "the commented media, gone on Instagram, to be marked",
        )
        assert scalar(db_url, "select count(*) from public.post_interactions where platform_item_id = '777'") == 1
        # An event for an account Trove does not know is kept and marked.
        stranger = json.dumps(
            {"object": "instagram", "entry": [{"id": "999", "time": 5, "changes": [
                {"field": "mentions", "value": {"media_id": "123", "comment_id": "456"}}]}]}
        ).encode()  # fmt: skip
        assert httpx.post(hook, content=stranger, headers={"X-Hub-Signature-256": sign(stranger)}).status_code == 200
        wait_for(
            lambda: (
                scalar(
                    db_url,
                    "select status::text from public.ingested_items where payload -> 'entry' -> 0 ->> 'id' = '999'",
                )
                == "dead_letter"
            ),
            60,
            "the stranger's event to be marked",
        )


def test_new_signed_urls_make_no_new_rows_an_expired_one_is_refreshed_and_deletions_are_confirmed(
    small: dict[str, Any], tmp_path: Path
) -> None:
    db_url = small["db"]
    sim: InstagramSimulator = small["sim"]
    account, log_id = connected(small)
    env = {**small["env"], "TROVE_MEDIA_DIR": str(tmp_path / "m")}
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, log_id, timeout=120) == "success"
        wait_media_settled(db_url)
        rows = scalar(db_url, "select count(*) from public.media_downloads")
        served = dict(sim.files_served)
        # Sync again: every URL comes back re-signed, nothing new is stored or downloaded.
        again = scalar(db_url, "select trove_private.enqueue_sync(%s, 'manual')", (account,))
        assert wait_for_log(db_url, str(again), timeout=60) == "success"
        wait_media_settled(db_url)
        assert scalar(db_url, "select count(*) from public.media_downloads") == rows
        assert sim.files_served == served
        # An expired URL: the download gets a 403, the worker asks Instagram for a fresh one and copies it.
        newest = small["account"].media[0]
        key = newest.children[0].id if newest.children else newest.id
        sim_post(small, "/_sim/clock", {"advance_seconds": 5 * 86400})
        by_id = sim.requests.get("node", 0)
        execute(
            db_url,
            "update public.media_downloads set status = 'pending', attempts = 0, run_after = now()"
            " where media_key = %s",
            (key,),
        )
        execute(db_url, "select pg_notify('trove_work', 'media_downloads')")
        wait_media_settled(db_url)
        assert scalar(db_url, "select status::text from public.media_downloads where media_key = %s", (key,)) == (
            "downloaded"
        )
        assert sim.requests.get("node", 0) > by_id, "a fresh URL was asked for"
        # The newest post is deleted on Instagram: the next poll misses it, asks, and only then marks it.
        deleted = httpx.delete(f"{small['sim_url']}/_sim/media", params={"id": newest.id}, timeout=10.0)
        assert deleted.status_code == 200
        poll = scalar(db_url, "select trove_private.enqueue_sync(%s, 'manual')", (account,))
        assert wait_for_log(db_url, str(poll), timeout=60) == "success"
        wait_for(
            lambda: scalar(
                db_url, "select deleted_on_platform from public.posts where platform_post_id = %s", (newest.id,)
            ),
            60,
            "the deletion to be confirmed",
        )
        assert scalar(db_url, "select count(*) from public.posts where deleted_on_platform") == 1
        assert scalar(db_url, "select count(*) from public.posts") == 42, "the archive keeps the deleted post"


def test_a_signed_event_naming_another_users_media_changes_nothing_of_theirs(
    small: dict[str, Any], tmp_path: Path
) -> None:
    db_url = small["db"]
    sim: InstagramSimulator = small["sim"]
    assert subscribe_webhooks(small).returncode == 0
    bob_account = sim.add_account(username="bob.shop", posts=3, stories=0)
    alice, alice_log = connected(small, "alice")
    _, bob_headers = user(db_url, "bob")
    bob_done = connect(small, bob_headers, sim_account="bob.shop")
    assert bob_done.status_code == 201, bob_done.text
    with running_worker({**small["env"], "TROVE_MEDIA_DIR": str(tmp_path / "m")}, tmp_path / "worker.log"):
        assert wait_for_log(db_url, alice_log, timeout=120) == "success"
        assert wait_for_log(db_url, bob_done.json()["sync_log_id"], timeout=120) == "success"
        theirs = bob_account.media[0].id
        before = query(db_url, "select * from public.posts where platform_post_id = %s", (theirs,))
        # Meta signs it, but it names Alice's account and Bob's media: Alice's token cannot read it.
        body = json.dumps(
            {"object": "instagram", "entry": [{"id": small["account"].user_id, "time": 7, "changes": [
                {"field": "comments", "value": {"from": {"id": "1", "username": "x"},
                 "media": {"id": theirs, "media_product_type": "FEED"}, "id": "555", "text": "hi"}}]}]}
        ).encode()  # fmt: skip
        hook = f"{small['url']}/functions/v1/webhook-instagram"
        assert httpx.post(hook, content=body, headers={"X-Hub-Signature-256": sign(body)}).status_code == 200
        wait_for(
            lambda: scalar(db_url, "select outcome from public.ingested_items where source = 'webhook'") == "applied",
            60,
            "the event",
        )
        sync = scalar(
            db_url, "select id from public.sync_logs where account_id = %s and sync_type = 'webhook'", (alice,)
        )
        assert wait_for_log(db_url, str(sync), timeout=60) == "success"
    assert query(db_url, "select * from public.posts where platform_post_id = %s", (theirs,)) == before
    assert scalar(db_url, "select count(*) from public.posts where account_id = %s and platform_post_id = %s",
                  (alice, theirs)) == 0  # fmt: skip
