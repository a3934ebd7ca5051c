"""Bluesky end to end through real processes: the simulator (PDS, AppView, PLC, authorization server,
Jetstream, DNS) over real HTTP, WebSocket and UDP; the HTTP service; a worker process; real Postgres."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.bluesky_harness import bluesky_stack, connect_by_handle, user
from tests.worker_harness import query, running_worker, scalar, wait_for, wait_for_log

from trove.simulators.bluesky import POST, REPOST, BlueskySimulator


@pytest.fixture
def small(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with bluesky_stack(db_url, monkeypatch, posts=40) as running:
        yield running


def repo_uris(sim: BlueskySimulator, did: str) -> set[str]:
    account = sim.accounts[did]
    return {record.uri for name in (POST, REPOST) for record in account.collection(name).values()}


def connected(stack: dict[str, Any], name: str = "alice") -> tuple[str, dict[str, Any]]:
    """The demo account connected for `name` by its handle: (account id, the callback's answer)."""
    sim: BlueskySimulator = stack["sim"]
    _, headers = user(stack["db"], name)
    done = connect_by_handle(stack, headers, sim.accounts[sim.demo_did].handle)
    assert done.status_code == 201, done.text
    return done.json()["account_id"], done.json()


def test_connect_by_handle_and_backfill_every_record_of_the_repo(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with bluesky_stack(db_url, monkeypatch, posts=1050) as stack:
        sim: BlueskySimulator = stack["sim"]
        did = sim.demo_did
        account, answer = connected(stack)
        row = query(
            db_url,
            "select platform_user_id, username, status::text, token_binding is not null, access_token like 'v%%:%%'"
            " from public.connected_accounts where id = %s",
            (account,),
        )[0]
        assert row == (did, sim.accounts[did].handle, "active", True, True)
        assert scalar(db_url, "select count(*) from public.oauth_states where session is not null") == 0, (
            "the OAuth session (a DPoP private key) is dropped once the callback used it"
        )
        env = {**stack["env"], "TROVE_MEDIA_DIR": str(tmp_path / "media")}
        with running_worker(env, tmp_path / "worker.log"):
            assert wait_for_log(db_url, answer["sync_log_id"], timeout=240) == "success"
            wait_for(
                lambda: scalar(db_url, "select count(*) from public.media_downloads where status = 'pending'") == 0,
                120,
                "the blobs to be copied",
            )
        archived = {
            r[0] for r in query(db_url, "select platform_post_id from public.posts where account_id = %s", (account,))
        }
        assert archived == repo_uris(sim, did), "every post and repost record of the repo, nothing else"
        assert len(archived) == 1050
        # The AppView hides one post: archived from the repo all the same, without a view.
        hidden = [r.uri for r in sim.accounts[did].collection(POST).values() if r.hidden]
        assert (
            hidden
            and scalar(
                db_url,
                "select post_data -> 'view' from public.ingested_posts where platform_post_id = %s",
                (hidden[0],),
            )
            is None
        )
        pinned = sim.accounts[did].profile()["pinnedPost"]["uri"]
        assert scalar(db_url, "select sync_state ->> 'pinned_post' from public.connected_accounts") == pinned
        kinds = dict(query(db_url, "select content_type::text, count(*) from public.posts group by 1"))
        assert kinds["repost"] == len(sim.accounts[did].collection(REPOST))
        assert kinds["reply"] > 0 and kinds["post"] > 0
        # Every API page went raw to ingested_items: the repo pages and the AppView pages that hydrated them.
        pages = dict(query(db_url, "select event_type, count(*) from public.ingested_items group by 1"))
        assert pages["repo.listRecords:app.bsky.feed.post"] == sim.requests["com.atproto.repo.listRecords"] - pages.get(
            "repo.listRecords:app.bsky.feed.repost", 0
        )
        assert pages["feed.getPosts"] == sim.requests["app.bsky.feed.getPosts"]
        # Media by CID from the PDS (the originals, never the CDN copy); one file per blob.
        media = query(db_url, "select media_key, storage_path from public.media_downloads where status = 'downloaded'")
        blobs = sim.accounts[did].blobs
        assert media and all(key in blobs for key, _ in media)
        assert scalar(db_url, "select count(*) from public.media_downloads where status <> 'downloaded'") == 0
        for key, path in media:
            assert (tmp_path / "media" / path).read_bytes() == blobs[key].data, "the original from the PDS"


def test_refused_connects_store_nothing(small: dict[str, Any]) -> None:
    sim: BlueskySimulator = small["sim"]
    _, headers = user(small["db"], "alice")
    unknown = connect_by_handle(small, headers, "nobody.trove.test")
    assert unknown.status_code == 400 and unknown.json()["error"] == "handle_not_found", unknown.text
    bad = connect_by_handle(small, headers, "not a handle")
    assert bad.status_code == 400, bad.text
    # The authorization server answers for another account than the handle resolved to.
    other = next(did for did in sim.accounts if did != sim.demo_did)
    httpx.post(f"{small['sim_url']}/_sim/config", json={"token_sub_override": other}).raise_for_status()
    wrong = connect_by_handle(small, headers, sim.accounts[sim.demo_did].handle)
    assert wrong.status_code == 400 and wrong.json()["error"] == "wrong_account", wrong.text
    assert scalar(small["db"], "select count(*) from public.connected_accounts") == 0


def sim_post(stack: dict[str, Any], **body: Any) -> dict[str, Any]:
    created = httpx.post(f"{stack['sim_url']}/_sim/posts", json=body, timeout=10.0)
    assert created.status_code == 201, created.text
    return dict(created.json())


def backfilled(stack: dict[str, Any], tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Connect the demo account; the worker's environment once its backfill is done."""
    account, answer = connected(stack)
    env = {**stack["env"], "TROVE_MEDIA_DIR": str(tmp_path / "media")}
    return account, {**env, "SYNC_LOG": answer["sync_log_id"]}


def stream_items(db_url: str, rkey: str) -> int:
    """How many Jetstream events about this record key are stored."""
    return int(
        scalar(
            db_url,
            "select count(*) from public.ingested_items where source = 'stream' and payload #>> '{commit,rkey}' = %s",
            (rkey,),
        )
    )


def backfilled_and_followed(db_url: str, sim: BlueskySimulator, env: dict[str, str]) -> None:
    """With a worker running: the connected account's backfill is done and Jetstream follows it."""
    assert wait_for_log(db_url, env["SYNC_LOG"], timeout=60) == "success"
    wait_for(lambda: sim.stats()["subscribers"] >= 1, 20, "the worker to follow the account on Jetstream")


def post_state(db_url: str, uri: str) -> tuple[Any, ...] | None:
    rows = query(
        db_url, "select text_content, deleted_on_platform from public.posts where platform_post_id = %s", (uri,)
    )
    return rows[0] if rows else None


def test_jetstream_brings_a_new_post_and_a_deletion_without_polling(small: dict[str, Any], tmp_path: Path) -> None:
    db_url, sim = small["db"], small["sim"]
    account, env = backfilled(small, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        backfilled_and_followed(db_url, sim, env)
        listed = sim.requests["com.atproto.repo.listRecords"]
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "trove.cli",
                "demo",
                "post",
                "bluesky",
                "Fresh from Jetstream ✨ #trove",
                "--simulator-url",
                small["sim_url"],
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        uri = cli.stdout.split()[1].rstrip(":")
        rkey = uri.rsplit("/", 1)[1]
        created = {"uri": uri, "rkey": rkey}
        wait_for(lambda: post_state(db_url, created["uri"]) is not None, 20, "the new post to arrive")
        assert post_state(db_url, created["uri"]) == ("Fresh from Jetstream ✨ #trove", False)
        # It came from the stream (stored raw, once), hydrated by the AppView; the repo was not polled.
        assert stream_items(db_url, created["rkey"]) == 1
        assert sim.requests["com.atproto.repo.listRecords"] == listed
        removed = httpx.delete(f"{small['sim_url']}/_sim/posts/{created['rkey']}", timeout=10.0)
        assert removed.status_code in (200, 204), removed.text
        wait_for(lambda: post_state(db_url, created["uri"])[1], 20, "the deletion to arrive")  # type: ignore[index]
        assert (
            scalar(
                db_url,
                "select outcome from public.ingested_items where source = 'stream' and payload ->> 'kind' = 'commit'"
                " and payload #>> '{commit,operation}' = 'delete'",
            )
            == "applied"
        )
        assert sim.requests["com.atproto.repo.listRecords"] == listed
    assert scalar(db_url, "select count(*) from public.posts where account_id = %s", (account,)) == 41


def test_bad_stream_input_is_kept_and_refused_and_the_stream_goes_on(small: dict[str, Any], tmp_path: Path) -> None:
    db_url, sim = small["db"], small["sim"]
    _, env = backfilled(small, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        backfilled_and_followed(db_url, sim, env)
        httpx.post(f"{small['sim_url']}/_sim/config", json={"malformed_frame": True}).raise_for_status()
        bad = sim_post(small, record={"$type": "app.bsky.feed.post", "text": 42, "createdAt": "yesterday"})
        good = sim_post(small, text="after the bad ones")
        wait_for(lambda: post_state(db_url, good["uri"]) is not None, 20, "the good post to arrive")
        dead = dict(
            query(
                db_url,
                "select event_type, error_message from public.ingested_items where status = 'dead_letter'",
            )
        )
        assert "not a Jetstream event" in dead["jetstream.malformed"]
        assert "does not have its lexicon's shape" in dead["jetstream.commit"] and "text" in dead["jetstream.commit"]
        assert post_state(db_url, bad["uri"]) is None
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log


def test_identity_and_account_events_update_the_account(small: dict[str, Any], tmp_path: Path) -> None:
    db_url, sim = small["db"], small["sim"]
    account, env = backfilled(small, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        backfilled_and_followed(db_url, sim, env)
        config = f"{small['sim_url']}/_sim/config"
        httpx.post(config, json={"identity": {"handle": "renamed.trove.test"}}).raise_for_status()
        wait_for(
            lambda: (
                scalar(db_url, "select username from public.connected_accounts where id = %s", (account,))
                == "renamed.trove.test"
            ),
            20,
            "the new handle",
        )
        httpx.post(config, json={"account": {"active": False, "status": "deactivated"}}).raise_for_status()
        wait_for(
            lambda: (
                scalar(db_url, "select status::text from public.connected_accounts where id = %s", (account,))
                == "error"
            ),
            20,
            "the account to be marked inactive",
        )
        assert "deactivated" in scalar(
            db_url, "select error_message from public.connected_accounts where id = %s", (account,)
        )
        time.sleep(3)  # longer than the stream takes to notice a change in whom it follows: still followed
        httpx.post(config, json={"account": {"active": True}}).raise_for_status()
        wait_for(
            lambda: (
                scalar(db_url, "select status::text from public.connected_accounts where id = %s", (account,))
                == "active"
            ),
            20,
            "the account to be active again",
        )


def archive_matches_repo(db_url: str, sim: BlueskySimulator, account: str) -> bool:
    archived = {
        r[0]
        for r in query(
            db_url,
            "select platform_post_id from public.posts where account_id = %s and not deleted_on_platform",
            (account,),
        )
    }
    return archived == repo_uris(sim, sim.demo_did)


def test_a_killed_consumer_loses_and_duplicates_nothing(small: dict[str, Any], tmp_path: Path) -> None:
    """SIGKILL the worker while posts stream in, and drop the Jetstream connection once: after restarts the
    archive is exactly the repository, and every stream event is stored once."""
    db_url, sim = small["db"], small["sim"]
    account, env = backfilled(small, tmp_path)
    did = sim.demo_did
    text = {"$type": POST, "createdAt": "2026-12-01T00:00:00.000Z"}
    lease = ("--lease-seconds", "3")  # what the killed worker held is claimed again soon
    with running_worker(env, tmp_path / "worker.log", *lease) as worker:
        backfilled_and_followed(db_url, sim, env)
        for n in range(60):
            sim.write(did, POST, None, {**text, "text": f"burst {n}"})
        wait_for(
            lambda: scalar(db_url, "select count(*) from public.ingested_items where source = 'stream'") > 0,
            20,
            "the first events to be stored",
        )
        worker.kill()  # mid-stream: some of the burst stored, some not
        worker.wait()
    for n in range(60, 90):  # while no consumer runs
        sim.write(did, POST, None, {**text, "text": f"burst {n}"})
    with running_worker(env, tmp_path / "worker2.log", *lease):
        wait_for(lambda: sim.stats()["subscribers"] >= 1, 20, "the restarted worker to follow again")
        for n in range(90, 120):
            sim.write(did, POST, None, {**text, "text": f"burst {n}"})
            if n == 100:
                httpx.post(f"{small['sim_url']}/_sim/config", json={"drop_subscribers": True}).raise_for_status()
        wait_for(lambda: archive_matches_repo(db_url, sim, account), 60, "the archive to match the repository")
    assert scalar(db_url, "select count(*) from public.posts where text_content like 'burst %%'") == 120
    assert (
        scalar(
            db_url,
            "select count(*) - count(distinct external_id) from public.ingested_items where source = 'stream'",
        )
        == 0
    )
    assert scalar(db_url, "select count(*) from public.ingested_items where source = 'stream'") == 120


def test_incremental_poll_reads_only_what_is_new(small: dict[str, Any], tmp_path: Path) -> None:
    """The scheduled poll (the fallback when the stream missed something): newest first, stopping at the
    archive's newest record key, hydrating the new records and the newest few."""
    db_url, sim = small["db"], small["sim"]
    account, env = backfilled(small, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, env["SYNC_LOG"], timeout=60) == "success"
    missed = [
        sim.write(
            sim.demo_did,
            POST,
            None,
            {"$type": POST, "text": f"missed {n}", "createdAt": "2026-12-01T00:00:00Z"},
            emit=False,
        )
        for n in range(3)
    ]
    listed, hydrated = sim.requests["com.atproto.repo.listRecords"], sim.requests["app.bsky.feed.getPosts"]
    from tests.worker_harness import enqueue

    # Counts change on the AppView: the poll refreshes the newest posts' views, and the history keeps both.
    archived = [r for r in sim.accounts[sim.demo_did].collection(POST).values() if r not in missed]
    liked = max(archived, key=lambda r: r.rkey)
    bumped = httpx.put(f"{small['sim_url']}/_sim/posts/{liked.rkey}", json={"likeCount": 99}, timeout=10.0)
    assert bumped.status_code == 200, bumped.text

    log_id = enqueue(db_url, account, "manual")
    with running_worker(env, tmp_path / "worker2.log"):
        assert wait_for_log(db_url, log_id, timeout=60) == "success"
    assert all(post_state(db_url, record.uri) is not None for record in missed)
    assert sim.requests["com.atproto.repo.listRecords"] - listed == 2  # one page per collection
    assert sim.requests["app.bsky.feed.getPosts"] - hydrated <= 2
    assert archive_matches_repo(db_url, sim, account)
    history = query(
        db_url,
        "select h.engagement_stats from public.engagement_history as h join public.posts as p on p.id = h.post_id"
        " where p.platform_post_id = %s order by h.recorded_at",
        (liked.uri,),
    )
    assert len(history) == 2 and history[-1][0]["likeCount"] == 99 and history[0][0]["likeCount"] != 99


def test_dpop_bound_tokens_are_refreshed_and_a_refused_refresh_asks_to_reconnect(
    small: dict[str, Any], tmp_path: Path
) -> None:
    from tests.worker_harness import enqueue

    db_url, sim = small["db"], small["sim"]
    account, env = backfilled(small, tmp_path)
    config = f"{small['sim_url']}/_sim/config"
    token = "select access_token from public.connected_accounts where id = %s"
    soon = "update public.connected_accounts set token_expires_at = now() + interval '1 minute' where id = %s"
    with running_worker(env, tmp_path / "worker.log"):
        assert wait_for_log(db_url, env["SYNC_LOG"], timeout=60) == "success"
        before = scalar(db_url, token, (account,))
        refusals = sim.auth.refusals.get("use_dpop_nonce", 0)
        # The token is about to expire and the server has a new DPoP nonce: the sync refreshes first, is told
        # use_dpop_nonce, and retries once with the new nonce.
        query(db_url, soon + " returning id", (account,))
        httpx.post(config, json={"rotate_dpop_nonce": True}).raise_for_status()
        assert wait_for_log(db_url, enqueue(db_url, account, "manual"), timeout=60) == "success"
        assert scalar(db_url, token, (account,)) != before
        assert sim.auth.refusals["use_dpop_nonce"] == refusals + 1
        assert scalar(
            db_url,
            "select token_expires_at > now() + interval '30 minutes' from public.connected_accounts where id = %s",
            (account,),
        )
        # Access revoked on the server: the next refresh gets invalid_grant, and the owner is asked to reconnect.
        httpx.post(config, json={"revoke": sim.demo_did}).raise_for_status()
        query(db_url, soon + " returning id", (account,))
        assert wait_for_log(db_url, enqueue(db_url, account, "manual"), timeout=60) == "failed"
    assert (
        scalar(db_url, "select status::text from public.connected_accounts where id = %s", (account,)) == "disconnected"
    )
    assert scalar(db_url, "select count(*) from public.notifications where kind = 'reauthorization_required'") == 1
    archived = scalar(db_url, "select count(*) from public.posts where account_id = %s", (account,))
    assert archived == 40, "a refused refresh loses nothing already archived"


def test_polling_notices_deletions_the_stream_missed(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Deleted while no consumer ran (no event will ever come): a poll notices a deletion among the newest
    records at once, and an old one at its daily full listing; a record listed again is not deleted any more."""
    with bluesky_stack(db_url, monkeypatch, posts=250) as stack:
        sim: BlueskySimulator = stack["sim"]
        account, env = backfilled(stack, tmp_path)
        with running_worker(env, tmp_path / "worker.log"):
            assert wait_for_log(db_url, env["SYNC_LOG"], timeout=120) == "success"
        posts = sorted(sim.accounts[sim.demo_did].collection(POST).values(), key=lambda r: r.rkey)
        newest, oldest = posts[-2], posts[0]
        for record in (newest, oldest):
            sim.remove(sim.demo_did, POST, record.rkey, emit=False)
        deleted = "select platform_post_id from public.posts where deleted_on_platform order by 1"
        from tests.worker_harness import enqueue

        log_id = enqueue(db_url, account, "manual")
        with running_worker(env, tmp_path / "worker2.log"):
            assert wait_for_log(db_url, log_id, timeout=60) == "success"
        assert [r[0] for r in query(db_url, deleted)] == [newest.uri], "the newest pages are read each poll"
        query(
            db_url,
            "update public.connected_accounts set sync_state = sync_state || %s::jsonb where id = %s returning id",
            ('{"full_listing_at": "2000-01-01T00:00:00+00:00"}', account),
        )
        listed = sim.requests["com.atproto.repo.listRecords"]
        log_id = enqueue(db_url, account, "manual")
        with running_worker(env, tmp_path / "worker3.log"):
            assert wait_for_log(db_url, log_id, timeout=60) == "success"
        assert sorted(r[0] for r in query(db_url, deleted)) == sorted([newest.uri, oldest.uri])
        assert sim.requests["com.atproto.repo.listRecords"] - listed >= 3, "the daily poll lists everything"
        assert archive_matches_repo(db_url, sim, account)
        # The old record is back (a PDS restored it): the next full listing names it, so it is not gone.
        sim.write(sim.demo_did, POST, oldest.rkey, oldest.value, emit=False)
        query(
            db_url,
            "update public.connected_accounts set sync_state = sync_state || %s::jsonb where id = %s returning id",
            ('{"full_listing_at": "2000-01-01T00:00:00+00:00"}', account),
        )
        log_id = enqueue(db_url, account, "manual")
        with running_worker(env, tmp_path / "worker4.log"):
            assert wait_for_log(db_url, log_id, timeout=60) == "success"
        assert [r[0] for r in query(db_url, deleted)] == [newest.uri]
        assert scalar(db_url, "select count(*) from public.posts where account_id = %s", (account,)) == 250


def test_an_account_connected_later_is_followed_without_reconnecting(small: dict[str, Any], tmp_path: Path) -> None:
    db_url, sim = small["db"], small["sim"]
    _, env = backfilled(small, tmp_path)
    with running_worker(env, tmp_path / "worker.log"):
        backfilled_and_followed(db_url, sim, env)
        connections = sim.requests["jetstream.subscribe"]
        # Bob connects his own account while the stream runs.
        other = next(did for did, acc in sim.accounts.items() if acc.handle.startswith("bob"))
        _, headers = user(db_url, "bob")
        joined = connect_by_handle(small, headers, sim.accounts[other].handle, sim_login=other)
        assert joined.status_code == 201, joined.text
        assert wait_for_log(db_url, joined.json()["sync_log_id"], timeout=60) == "success"
        created = sim_post(small, did=other, text="Bob, live")
        wait_for(lambda: post_state(db_url, created["uri"]) is not None, 20, "Bob's new post to arrive")
        # Once followed, Bob's posts come through the stream itself.
        later = sim_post(small, did=other, text="Bob, later")
        wait_for(lambda: stream_items(db_url, later["rkey"]) == 1, 20, "Bob's next post through Jetstream")
        wait_for(lambda: post_state(db_url, later["uri"]) is not None, 20, "Bob's next post to arrive")
        assert sim.requests["jetstream.subscribe"] == connections, "the same connection, told by options_update"
        assert sim.stats()["subscribers"] == 1
