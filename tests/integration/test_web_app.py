"""The web app's guarantees over real HTTP and real Postgres, without a browser: who sees what (RLS, as for the
API), CSRF and origin checks on every form, the security headers, escaping and sanitizing of hostile post
content, and clear answers to bad input. (tests/e2e/test_web_browser.py drives the same pages in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.worker_harness import RING, scalar

from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.http.auth import issue_local_token
from trove.simulators.serve import BackgroundServer

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
HOSTILE_TEXT = 'alice <script>alert("text")</script> morning run'
HOSTILE_HTML = (
    '<p onclick="steal()">hello <img src=x onerror="steal()"><a href="javascript:steal()">link</a>'
    '<a href="https://example.test/ok">fine</a><iframe src="https://evil.test"></iframe><style>*{}</style></p>'
)


@pytest.fixture
def web(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TROVE_LOCAL_STACK", "1")
    port = free_port()
    monkeypatch.setenv("TROVE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TROVE_PLATFORMS", "")
    ids: dict[str, Any] = {}
    for name in ("alice", "bob"):
        ids[name] = str(scalar(db_url, "select tests.create_user(%s)", (name,)))
        scalar(db_url, "select tests.create_archive(%s)", (name,))
        ids[f"{name}_post"] = str(scalar(db_url, "select tests.id('post', %s)", (name,)))
        ids[f"{name}_account"] = str(scalar(db_url, "select tests.id('account', %s)", (name,)))
        ids[f"{name}_key"] = str(scalar(db_url, "select tests.id('api_key', %s)", (name,)))
    scalar(
        db_url,
        "update public.posts set text_content = %s, html_content = %s where id = %s returning 1",
        (HOSTILE_TEXT, HOSTILE_HTML, ids["alice_post"]),
    )
    with BackgroundServer(create_app(db_url, RING), port) as service:
        yield {"url": service.url, "db": db_url, **ids}


def browser(web: dict[str, Any], who: str | None) -> httpx.Client:
    """A client with a signed-in session cookie (or none), as a browser that signed in holds it."""
    client = httpx.Client(base_url=web["url"], timeout=30, follow_redirects=False)
    if who:
        client.cookies.set("trove_access", issue_local_token(web[who], f"{who}@test.trove.local"))
    return client


def token_of(client: httpx.Client, path: str = "/app/keys") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, "the page has no CSRF token"
    return found.group(1)


def test_pages_need_a_session_and_come_back_after_signing_in(web: dict[str, Any]) -> None:
    with browser(web, None) as anonymous:
        for path in ("/app/archive", "/app/accounts", "/app/overview", "/app/keys", "/app/import", "/app/posts/x"):
            response = anonymous.get(path, params={"q": "run"})
            assert response.status_code == 303, path
            location = urlsplit(response.headers["location"])
            assert location.path == "/app/signin"
            assert parse_qs(location.query)["next"] == [f"{path}?q=run"]
        assert anonymous.get("/app/signin").status_code == 200
        assert anonymous.get("/app/sync/00000000-0000-4000-8000-000000000000.json").status_code == 303


def test_an_expired_session_without_a_refresh_token_signs_out(web: dict[str, Any]) -> None:
    with browser(web, None) as client:
        client.cookies.set("trove_access", issue_local_token(web["alice"], ttl_seconds=-10))
        response = client.get("/app/archive")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/app/signin")
        cleared = response.headers.get_list("set-cookie")
        assert any(c.startswith("trove_access=") and "Max-Age=0" in c for c in cleared), cleared
        client.cookies.set("trove_access", "not-a-jwt")
        assert client.get("/app/archive").status_code == 303


def test_each_user_sees_only_their_own_archive(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice, browser(web, "bob") as bob:
        mine = alice.get("/app/archive")
        assert mine.status_code == 200
        assert web["alice_post"] in mine.text and web["bob_post"] not in mine.text
        theirs = bob.get("/app/archive")
        assert web["bob_post"] in theirs.text and web["alice_post"] not in theirs.text
        assert "alice" not in bob.get("/app/accounts").text
        assert bob.get(f"/app/posts/{web['alice_post']}").status_code == 404
        assert bob.get("/app/posts/not-a-uuid").status_code == 404
        assert alice.get(f"/app/posts/{web['alice_post']}").status_code == 200
        assert "alice" not in bob.get("/app/overview").text
        assert "alice website" not in bob.get("/app/keys").text
        sync = scalar(web["db"], "select tests.id('queued_sync_log', 'alice')")
        assert bob.get(f"/app/sync/{sync}.json").status_code == 404
        assert alice.get(f"/app/sync/{sync}.json").json()["status"] == "queued"

        token = token_of(bob)
        for path in (
            f"/app/accounts/{web['alice_account']}/sync",
            f"/app/accounts/{web['alice_account']}/disconnect",
            f"/app/keys/{web['alice_key']}/revoke",
            "/app/accounts/not-a-uuid/sync",
            "/app/keys/not-a-uuid/revoke",
        ):
            assert bob.post(path, data={"csrf_token": token}).status_code == 404, path
    assert (
        scalar(web["db"], "select status::text from public.connected_accounts where id = %s", (web["alice_account"],))
        == "active"
    )
    assert scalar(web["db"], "select revoked_at from public.api_keys where id = %s", (web["alice_key"],)) is None


def test_every_form_needs_its_csrf_token_from_this_site(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice, browser(web, "bob") as bob:
        token = token_of(alice)
        bobs = token_of(bob)
        refused = [
            alice.post("/app/keys", data={"name": "no token"}),
            alice.post("/app/keys", data={"name": "wrong", "csrf_token": "0" * 64}),
            alice.post("/app/keys", data={"name": "bob's", "csrf_token": bobs}),
            alice.post(
                "/app/keys", data={"name": "cross", "csrf_token": token}, headers={"Origin": "https://evil.test"}
            ),
            alice.post(
                "/app/keys", data={"name": "cross", "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
            ),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            assert "text/html" in response.headers["content-type"]
        assert scalar(web["db"], "select count(*) from public.api_keys where user_id = %s", (web["alice"],)) == 1
        # Without its cookie the token is worthless: another browser cannot replay it.
        with browser(web, "alice") as elsewhere:
            assert elsewhere.post("/app/keys", data={"name": "x", "csrf_token": token}).status_code == 403
        made = alice.post("/app/keys", data={"name": "my site", "csrf_token": token}, headers={"Origin": web["url"]})
        assert made.status_code == 201
        key = re.search(r'value="(trove_[0-9a-f]{8}_[A-Za-z0-9-]+)"', made.text)
        assert key, "the new key is shown once"
        assert made.headers["cache-control"] == "no-store"
        assert key.group(1) not in alice.get("/app/keys").text
        # The key reads the public feed; revoking it through the app ends that at once.
        assert (
            httpx.get(f"{web['url']}/api/posts", headers={"Authorization": f"Bearer {key.group(1)}"}).status_code == 200
        )
        key_id = scalar(web["db"], "select id from public.api_keys where name = 'my site'")
        revoked = alice.post(f"/app/keys/{key_id}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
        assert (
            httpx.get(f"{web['url']}/api/posts", headers={"Authorization": f"Bearer {key.group(1)}"}).status_code == 401
        )


def test_pages_carry_the_security_headers(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice:
        for path in ("/app/archive", "/app/signin", f"/app/posts/{web['alice_post']}", "/app/posts/nope"):
            response = alice.get(path)
            policy = response.headers["content-security-policy"]
            for directive in (
                "default-src 'none'",
                "script-src 'self'",
                "frame-ancestors 'none'",
                "form-action 'self'",
            ):
                assert directive in policy, (path, policy)
            assert "unsafe-inline" not in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
    with browser(web, None) as anonymous:
        made = anonymous.get("/app/signin").headers.get_list("set-cookie")
        cookie = next(c for c in made if c.startswith("trove_csrf="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        css = anonymous.get("/app/static/app.css")
        assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"
        assert css.headers["content-type"].startswith("text/css")
        assert anonymous.get("/app/static/%2e%2e/templates/base.html").status_code == 404


def test_hostile_post_content_is_escaped_and_sanitized(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice:
        for page in (alice.get("/app/archive"), alice.get(f"/app/posts/{web['alice_post']}")):
            html = page.text
            assert "<script>alert" not in html and "onerror" not in html and "onclick" not in html
            assert "javascript:" not in html and "<iframe" not in html and "<style>" not in html
            assert '<a href="https://example.test/ok" rel="noopener noreferrer nofollow ugc">fine</a>' in html
        # A search: the matched word is marked, the rest of the text still escaped.
        found = alice.get("/app/archive", params={"q": "morning"})
        assert "<mark>morning</mark>" in found.text
        assert "&lt;script&gt;alert(&#34;text&#34;)&lt;/script&gt;" in found.text
        assert "<script>alert" not in found.text


def test_bad_filters_get_a_clear_answer(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice:
        for params, message in (
            ({"since": "yesterday"}, "from must be a date"),
            ({"platform": "myspace"}, "unknown platforms: myspace"),
            ({"type": "poem"}, "unknown types: poem"),
            ({"cursor": "!!!"}, "invalid cursor"),
            ({"q": "a\x00b"}, "control characters"),
        ):
            response = alice.get("/app/archive", params=params)
            assert response.status_code == 400, params
            assert message in response.text, (params, response.text[-800:])
        assert alice.get("/app/archive", params={"until": "2999-12-31"}).status_code == 200


def test_next_never_leaves_the_app(web: dict[str, Any]) -> None:
    with browser(web, None) as anonymous:
        for target in ("//evil.test/x", "https://evil.test", "/\\evil.test", "/api/posts", "javascript:alert(1)"):
            page = anonymous.get("/app/signin", params={"next": target})
            assert 'name="next" value="/app/archive"' in page.text, target
    with browser(web, "alice") as alice:
        assert alice.get("/app/signin", params={"next": "//evil.test"}).headers["location"] == "/app/archive"


def test_post_page_shows_engagement_history_and_raw_payloads(web: dict[str, Any]) -> None:
    scalar(
        web["db"],
        "insert into public.engagement_history (post_id, user_id, engagement_stats, recorded_at)"
        " values (%s, %s, '{\"kudos_count\": 9}', now() + interval '1 hour') returning 1",
        (web["alice_post"], web["alice"]),
    )
    with browser(web, "alice") as alice:
        page = alice.get(f"/app/posts/{web['alice_post']}").text
        assert "9 kudos" in page
        assert '<svg class="chart"' in page and "kudos: 3" in page and "kudos: 9" in page
        assert "Latest payload from strava" in page and "TrailRun" in page
        assert "https://media.example.test/alice.jpg" in page  # not copied yet: a link to the original


def test_disconnect_keeps_the_archive(web: dict[str, Any]) -> None:
    with browser(web, "alice") as alice:
        token = token_of(alice, "/app/accounts")
        response = alice.post(f"/app/accounts/{web['alice_account']}/disconnect", data={"csrf_token": token})
        assert response.status_code == 303
        assert "Not syncing. Your archive is kept" in alice.get("/app/accounts").text
        assert web["alice_post"] in alice.get("/app/archive").text
    assert (
        scalar(web["db"], "select access_token from public.connected_accounts where id = %s", (web["alice_account"],))
        is None
    )


def test_import_upload_takes_the_file_itself_with_its_csrf_header(
    web: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TROVE_IMPORT_MAX_BYTES", "4096")
    with browser(web, "alice") as alice, browser(web, "bob") as bob:
        token = token_of(alice, "/app/import")
        assert 'data-csrf="' + token + '"' in alice.get("/app/import").text
        body = b"PK\x03\x04" + b"not really a zip" * 10
        name = {"X-File-Name": "my export.zip", "Content-Type": "application/octet-stream"}
        assert alice.post("/app/import", content=body, headers=name).status_code == 403
        assert (
            alice.post("/app/import", content=body, headers={**name, "X-CSRF-Token": token_of(bob)}).status_code == 403
        )
        cross = {**name, "X-CSRF-Token": token, "Origin": "https://evil.test"}
        assert alice.post("/app/import", content=body, headers=cross).status_code == 403
        form = alice.post("/app/import", files={"file": ("x.zip", body)}, headers={"X-CSRF-Token": token})
        assert form.status_code == 415
        huge = alice.post("/app/import", content=b"x" * 5000, headers={**name, "X-CSRF-Token": token})
        assert huge.status_code == 413 and "import limit" in huge.json()["detail"]
        empty = alice.post("/app/import", content=b"", headers={**name, "X-CSRF-Token": token})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        made = alice.post("/app/import", content=body, headers={**name, "X-CSRF-Token": token})
        assert made.status_code == 202, made.text
        assert made.json()["joined"] is False
        listed = alice.get("/app/import").text
        assert "my export.zip" in listed and "queued" in listed
        assert "my export.zip" not in bob.get("/app/import").text
    assert scalar(web["db"], "select count(*) from public.imports where user_id = %s", (web["alice"],)) == 1


def test_what_the_probe_found_stays_fixed(web: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """An outside probe's findings: the last day of the calendar, an unknown user's upload, counts no float
    holds, a stored link that is not http(s), and Auth being unreachable."""
    scalar(
        web["db"],
        "insert into public.engagement_history (post_id, user_id, engagement_stats)"
        " values (%s, %s, jsonb_build_object('like_count', 1e400::numeric, 'nan', 'NaN')) returning 1",
        (web["alice_post"], web["alice"]),
    )
    scalar(
        web["db"],
        "update public.posts set permalink = 'javascript:alert(1)' where id = %s returning 1",
        (web["alice_post"],),
    )
    with browser(web, "alice") as alice:
        assert alice.get("/app/archive", params={"until": "9999-12-31"}).status_code == 200
        for path in ("/app/archive", f"/app/posts/{web['alice_post']}"):
            response = alice.get(path)
            assert response.status_code == 200, path
            assert "javascript:" not in response.text
    ghost = "00000000-0000-4000-8000-0000000000ff"
    with browser(web, None) as deleted:
        deleted.cookies.set("trove_access", issue_local_token(ghost))
        token = token_of(deleted)
        upload = deleted.post("/app/import", content=b"x" * 100, headers={"X-CSRF-Token": token})
        assert upload.status_code == 403
    # Auth unreachable: a refresh keeps the session (503, cookies untouched); a sign-in says so plainly.
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    with browser(web, None) as client:
        client.cookies.set("trove_access", issue_local_token(web["alice"], ttl_seconds=-10))
        client.cookies.set("trove_refresh", "a" * 40)
        response = client.get("/app/archive")
        assert response.status_code == 503
        assert not any("Max-Age=0" in c for c in response.headers.get_list("set-cookie"))
        client.cookies.clear()
        token = token_of(client, "/app/signin")
        refused = client.post("/app/signin", data={"csrf_token": token, "email": "a@b.test", "password": "xxxxxxxx"})
        assert refused.status_code == 503 and "not available right now" in refused.text
        assert "Errno" not in refused.text


def test_sign_in_attempts_from_one_address_are_limited(web: dict[str, Any]) -> None:
    with browser(web, None) as client:
        token = token_of(client, "/app/signin")
        answers = [
            client.post(
                "/app/signin", data={"csrf_token": token, "email": "x@y.test", "password": "wrongpass"}
            ).status_code
            for _ in range(12)
        ]
    assert answers[:10] == [400] * 10 and answers[10:] == [429, 429], answers


def test_a_sign_in_link_works_only_in_the_browser_that_asked_for_it(
    web: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TROVE_STATE_DIR", str(tmp_path))
    scalar(web["db"], "update auth.users set email = 'alice@example.test' where id = %s returning 1", (web["alice"],))
    with browser(web, None) as asking, browser(web, None) as elsewhere:
        token = token_of(asking, "/app/signin")
        assert asking.post("/app/signin/link", data={"email": "alice@example.test"}).status_code == 403  # no CSRF
        sent = asking.post("/app/signin/link", data={"email": "alice@example.test", "csrf_token": token})
        assert sent.status_code == 200 and "sign-in link is on its way" in sent.text
        verifier = next(c for c in sent.headers.get_list("set-cookie") if c.startswith("trove_link_verifier="))
        assert "HttpOnly" in verifier and "SameSite=lax" in verifier
        mail = sorted((tmp_path / "mailbox").glob("*.eml"))[-1].read_text()
        link = re.search(r"https?://\S+/auth/v1/verify\?\S+", mail)
        assert link
        landed = httpx.get(link.group(0), follow_redirects=False)
        assert landed.status_code == 303
        callback = landed.headers["location"]
        # Another browser (no verifier) gets nothing, and the code is not spent by its attempt.
        refused = elsewhere.get(callback)
        assert refused.status_code == 400 and "browser you asked for it from" in refused.text
        assert elsewhere.get("/app/auth/callback", params={"code": "x" * 600}).status_code == 400
        assert elsewhere.get("/app/auth/callback", params={"error_code": "otp_expired"}).status_code == 400
        signed = asking.get(callback)
        assert signed.status_code == 303 and signed.headers["location"] == "/app/archive"
        assert asking.get("/app/archive").status_code == 200
        assert asking.get(callback).status_code == 400  # once: the verifier went with the first use, and the code


def test_the_worst_a_browser_can_send(web: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Forged and oversized cookies, oversized and malformed forms, another user's ids: clear answers, nothing
    changed, never a 500."""
    import jwt as pyjwt

    forged = [
        pyjwt.encode(
            {"sub": web["alice"], "role": "authenticated", "aud": "authenticated", "exp": 4102444800}, "x" * 40
        ),
        pyjwt.encode({"sub": web["alice"], "role": "service_role", "exp": 4102444800}, "wrong", algorithm="HS256"),
        "eyJhbGciOiJub25lIn0." + "e30.",
        "a" * 9000,
    ]
    for value in forged:
        with browser(web, None) as client:
            client.cookies.set("trove_access", value)
            response = client.get("/app/archive")
            assert response.status_code == 303 and response.headers["location"].startswith("/app/signin"), value[:40]
    # A refresh cookie of no token's shape never reaches Auth (an unreachable Auth would answer 503).
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    for value in ("short", "x y z" * 10, "a" * 2000, "%00" * 20):
        with browser(web, None) as client:
            client.cookies.set("trove_refresh", value)
            assert client.get("/app/archive").status_code == 303
    monkeypatch.delenv("SUPABASE_URL")
    with browser(web, None) as anonymous:
        signin = token_of(anonymous, "/app/signin")
        missing = anonymous.post("/app/signin", data={"csrf_token": signin})
        assert missing.status_code == 400 and 'role="alert"' in missing.text
        weak = anonymous.post(
            "/app/signup", data={"csrf_token": signin, "email": "weak@example.test", "password": "12345"}
        )
        assert weak.status_code == 400 and "at least 6 characters" in weak.text
        link = anonymous.post("/app/signin/link", data={"csrf_token": signin, "email": "@" * 5000})
        assert link.status_code == 400 and 'role="alert"' in link.text
    with browser(web, "alice") as alice, browser(web, "bob") as bob:
        token = token_of(alice)
        huge = alice.post("/app/keys", data={"csrf_token": token, "name": "x" * (2 * 1024 * 1024)})
        assert huge.status_code == 413
        long_name = alice.post("/app/keys", data={"csrf_token": token, "name": "x" * 101})
        assert long_name.status_code == 400 and "at most 100" in long_name.text
        twice = alice.post(
            "/app/keys",
            content=f"csrf_token={token}&name=a&name=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert twice.status_code == 201
        # Bob reads, dismisses or acts on alice's things by id: nothing happens.
        note = str(scalar(web["db"], "select tests.id('notification', 'alice')"))
        bobs = token_of(bob)
        assert bob.post(f"/app/notifications/{note}/read", data={"csrf_token": bobs}).status_code == 303
        assert bob.post("/app/notifications/not-a-uuid/read", data={"csrf_token": bobs}).status_code == 404
        assert bob.post("/app/connect/myspace", data={"csrf_token": bobs}).status_code == 404
    assert scalar(web["db"], "select read_at from public.notifications where id = %s", (note,)) is None
    assert scalar(web["db"], "select count(*) from public.api_keys where user_id = %s", (web["bob"],)) == 1
