"""The web app in a real browser: Debian's Chromium driven by Playwright, against the HTTP service with the
local Supabase Auth stand-in, the Instagram simulator and a worker process, all on real ports with real
Postgres. A person signs up, connects Instagram through the simulator's consent, watches the backfill and a
"Sync now" run to the end, searches, opens a post and plays its video, makes and revokes an API key, signs
out; another person sees none of it. A failing test leaves a screenshot (see conftest.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from tests.instagram_harness import instagram_stack
from tests.worker_harness import running_worker, scalar, wait_for

CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/install-system-deps.sh); Playwright downloads nothing
# Headless and quiet: no sandbox as root, and nothing that reaches for the internet this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def web(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TROVE_LOCAL_STACK", "1")  # the Auth stand-in is mounted
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path))  # media copies: the worker writes, the service serves
    with instagram_stack(db_url, monkeypatch, posts=16, stories=1) as stack:
        with running_worker(stack["env"], tmp_path / "worker.log"):
            yield stack


@pytest.fixture
def context(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    made = chromium.new_context(viewport={"width": 1280, "height": 900})
    made.set_default_timeout(30_000)
    request.node.browser_contexts = [made]  # conftest.py screenshots these when the test fails
    yield made
    made.close()


def sign_up(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/app/")
    expect(page).to_have_url(re.compile(r"/app/signin"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/app/accounts"))
    expect(page.get_by_role("heading", name="Connected accounts")).to_be_visible()


def wait_for_sync_done(page: Page) -> None:
    box = page.locator("[data-sync]").first
    expect(box.locator('[data-field="status"]')).to_have_text("success", timeout=90_000)
    assert box.get_attribute("data-running") == "no"


def test_a_person_archives_instagram_in_the_browser(
    web: dict[str, Any], context: BrowserContext, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    base, db = web["url"], web["db"]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on(
        "response",
        lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )

    sign_up(page, base, "alice@example.test")
    user_id = scalar(db, "select id::text from auth.users where email = 'alice@example.test'")
    assert scalar(db, "select count(*) from public.users where id = %s", (user_id,)) == 1

    # Connect: our page, then the simulator's consent, then back to the accounts page.
    page.get_by_role("button", name="Connect instagram").click()
    expect(page).to_have_url(re.compile(r"/app/accounts\?connected=instagram"))
    expect(page.get_by_text("Connected instagram")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("trove.demo"))).to_be_visible()
    wait_for_sync_done(page)  # the backfill, followed live by app.js

    page.get_by_role("button", name="Sync now").click()
    expect(page).to_have_url(re.compile(r"/app/accounts\?sync="))
    wait_for_sync_done(page)
    box = page.locator("[data-sync]").first
    assert "manual sync" in box.inner_text()
    assert int(box.locator('[data-field="posts_fetched"]').inner_text()) > 0
    assert int(box.locator('[data-field="pages"]').inner_text()) >= 1

    # The archive, then a search with its highlights and per-platform counts.
    page.get_by_role("link", name="Archive").click()
    expect(page.locator("li.post").first).to_be_visible()
    word = scalar(
        db,
        "select lower(substring(text_content from '([A-Za-z]{6,})')) from public.posts"
        " where user_id = %s and text_content ~ '[A-Za-z]{6,}' limit 1",
        (user_id,),
    )
    page.get_by_label("Search").fill(word)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("mark").first).to_be_visible()
    expect(page.locator(".facets")).to_contain_text("instagram:")

    # A reel: its copy plays.
    reel = wait_for(
        lambda: scalar(
            db,
            "select p.id::text from public.posts as p"
            " join public.ingested_posts as ip on ip.platform_post_id = p.platform_post_id"
            " join public.post_media as pm on pm.ingested_post_id = ip.id"
            " join public.media_downloads as md on md.id = pm.media_download_id"
            " where p.user_id = %s and md.status = 'downloaded' and md.content_type = 'video/mp4' limit 1",
            (user_id,),
        ),
        90,
        "a reel's video copied",
    )
    page.goto(f"{base}/app/posts/{reel}")
    video = page.locator("video").first
    expect(video).to_be_visible()
    played = video.evaluate(
        """async (v) => { v.muted = true; await v.play(); await new Promise(r => setTimeout(r, 300));
            return {width: v.videoWidth, time: v.currentTime, error: v.error && v.error.code}; }"""
    )
    assert played["error"] is None and played["width"] == 16 and played["time"] > 0, played
    expect(page.get_by_text("Latest payload from instagram")).to_be_visible()

    # An image post: its copy loads.
    page.goto(f"{base}/app/archive?type=post")
    image = page.locator("li.post img").first
    expect(image).to_be_visible()
    wait_for(lambda: image.evaluate("i => i.complete && i.naturalWidth > 0"), 30, "the image to load")
    assert image.get_attribute("alt")

    # An API key: shown once, reads the public feed, revoked from the page.
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("my website")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("Key").input_value()
    assert key.startswith("trove_")
    feed = httpx.get(f"{base}/api/posts", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert feed.status_code == 200 and feed.json()["public"] is True
    page.get_by_role("button", name="Revoke my website").click()
    expect(page.get_by_text(re.compile(r"revoked \d{4}-"))).to_be_visible()
    assert httpx.get(f"{base}/api/posts", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 401

    # Someone else signs up in another browser: none of it is theirs.
    other = chromium.new_context(viewport={"width": 390, "height": 844})  # a phone's width
    request.node.browser_contexts.append(other)
    bob = other.new_page()
    sign_up(bob, base, "bob@example.test")
    expect(bob.get_by_text("No accounts yet")).to_be_visible()
    bob.goto(f"{base}/app/archive")
    expect(bob.get_by_text("Nothing here yet")).to_be_visible()
    assert bob.locator("li.post").count() == 0
    response = bob.goto(f"{base}/app/posts/{reel}")
    assert response is not None and response.status == 404
    bob.goto(f"{base}/app/keys")
    expect(bob.get_by_text("No keys yet")).to_be_visible()
    other.close()

    # Signing out ends the session on the server too: the refresh token it held no longer works.
    refresh = next(c["value"] for c in context.cookies() if c["name"] == "trove_refresh")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/app/signin"))
    page.goto(f"{base}/app/archive")
    expect(page).to_have_url(re.compile(r"/app/signin"))
    context.add_cookies([{"name": "trove_refresh", "value": refresh, "url": f"{base}/"}])
    page.goto(f"{base}/app/archive")
    expect(page).to_have_url(re.compile(r"/app/signin"))
    assert not problems, problems


def test_sign_in_and_its_mistakes(web: dict[str, Any], context: BrowserContext) -> None:
    base = web["url"]
    page = context.new_page()
    sign_up(page, base, "carol@example.test")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/app/signin"))

    page.get_by_label("Email", exact=True).fill("carol@example.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid login credentials")
    expect(page.get_by_label("Email", exact=True)).to_have_value("carol@example.test")

    page.goto(f"{base}/app/overview")  # signed out: to sign in, then back here
    expect(page).to_have_url(re.compile(r"/app/signin\?next=%2Fapp%2Foverview"))
    page.get_by_label("Email", exact=True).fill("carol@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/app/overview$"))
    expect(page.locator("svg.heatmap")).to_be_visible()

    # A sign-in link instead of the password: emailed (on the local stack, written to the mailbox), opened in
    # this browser, signed in; opened again, refused.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email for a sign-in link").fill("carol@example.test")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    mailbox = Path(os.environ["TROVE_STATE_DIR"]) / "mailbox"
    mail = wait_for(lambda: sorted(mailbox.glob("*.eml")), 10, "the sign-in email")[-1].read_text()
    link = re.search(r"https?://\S+/auth/v1/verify\?\S+", mail)
    assert link, mail
    page.goto(link.group(0))
    expect(page).to_have_url(re.compile(r"/app/archive$"))
    expect(page.get_by_text("carol@example.test")).to_be_visible()
    page.goto(link.group(0))
    expect(page.get_by_role("alert")).to_contain_text("invalid or has expired")
    # The same answer for an address with no account: nothing to learn about who has one.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email for a sign-in link").fill("nobody@example.test")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_text("If nobody@example.test has a Trove account")).to_be_visible()

    # Signing up twice with one address is refused with Auth's own words.
    page.goto(f"{base}/app/signup")
    page.get_by_label("Email", exact=True).fill("carol@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("already")
