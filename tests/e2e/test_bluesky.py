"""Bluesky end to end through real processes: the simulator (PDS, AppView, PLC, authorization server,
Jetstream, DNS) over real HTTP, WebSocket and UDP; the HTTP service; a worker process; real Postgres."""

from __future__ import annotations

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
