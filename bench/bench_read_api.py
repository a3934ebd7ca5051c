"""Read API figures on 1,000,000 posts for 100 users: feed (first page and a deep keyset page) and search
p50/p99 in SQL as the user (RLS on), /api/posts over HTTP with a concurrent client, cached vs uncached, and the
web app's archive page (/app/archive: the feed RPC, the page's extras, the template) one request at a time,
with the same page of /api/posts uncached as its baseline."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, median, percentile, report, throwaway_cluster, timings_ms
from trove.config import PROJECT_ROOT
from trove.crypto import generate_key
from trove.db.cluster import free_port
from trove.http.auth import issue_local_token

USERS = 100
POSTS_PER_USER = 10_000
WORDS = ["river", "hills", "tempo", "bread", "sunrise", "trail", "harbor", "coffee", "snow", "garden"]


def seed(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) select gen_random_uuid(), 'u' || n || '@bench.test'"
            " from generate_series(1, %s) as n",
            (USERS,),
        )
        conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " select id, 'bluesky', 'did:plc:' || id, split_part(email, '@', 1) from public.users"
        )
        # Bulk load: triggers off for the load itself, search vectors computed inline (as the trigger would).
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            conn.execute(
                """
                insert into public.posts (account_id, user_id, platform, platform_post_id, content_type, text_content,
                                          created_at_platform, search_vector)
                select ca.id, ca.user_id, 'bluesky', ca.id || '-' || n, 'post', t.text,
                       timestamptz '2020-01-01' + n * interval '17 minutes',
                       setweight(to_tsvector('english', t.text), 'A')
                from public.connected_accounts as ca
                cross join generate_series(1, %s) as n
                cross join lateral (
                    select 'post ' || n || ' about the ' || (%s::text[])[1 + n %% 10] || ' and the '
                        || (%s::text[])[1 + (n / 10) %% 10] as text
                ) as t
                """,
                (POSTS_PER_USER, WORDS, WORDS),
            )
        conn.execute("vacuum analyze public.posts")
        return [row[0] for row in conn.execute("select id::text from public.users order by id")]


def sql_figures(url: str, user: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:

        def run(sql: str, params: tuple[object, ...]) -> None:
            with conn.transaction():
                conn.execute("set local role authenticated")
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": user, "role": "authenticated"}),),
                )
                conn.execute(sql, params).fetchall()

        with conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute(
                "select set_config('request.jwt.claims', %s, true)",
                (json.dumps({"sub": user, "role": "authenticated"}),),
            )
            deep = conn.execute("select cursor from public.feed(p_limit => 100, p_offset => 5000) limit 1").fetchone()[
                0
            ]
        first = timings_ms(lambda: run("select * from public.feed(p_limit => 20)", ()), 300)
        keyset = timings_ms(lambda: run("select * from public.feed(p_limit => 20, p_cursor => %s)", (deep,)), 300)
        search = timings_ms(lambda: run("select * from public.search_posts('river hills', p_limit => 20)", ()), 100)
        filtered = timings_ms(lambda: run("select * from public.feed(p_limit => 20, p_query => 'harbor')", ()), 100)
    report("feed_sql_first_page_p50", median(first), "ms")
    report("feed_sql_first_page_p99", percentile(first, 99), "ms")
    report("feed_sql_keyset_deep_page_p50", median(keyset), "ms")
    report("feed_sql_keyset_deep_page_p99", percentile(keyset, 99), "ms")
    report("search_sql_p50", median(search), "ms")
    report("search_sql_p99", percentile(search, 99), "ms")
    report("feed_sql_with_query_p50", median(filtered), "ms")


async def load(base: str, token: str, requests: int, concurrency: int, vary: bool) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for n in counter:
            params = {"limit": 10 + n % 90, "q": WORDS[n % 10]} if vary else {"limit": 20}
            start = time.perf_counter()
            response = await http.get(f"{base}/api/posts", params=params, headers=headers)
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text

    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def archive_page_figures(base: str, token: str) -> None:
    """The archive page as a signed-in browser gets it: first page, a deep page (keyset), a search; each
    beside /api/posts for the same page, uncached, in the same run."""
    cookies = {"trove_access": token}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60, cookies=cookies) as http:
        deep = http.get(f"{base}/api/posts", params={"limit": 100, "offset": 5000}, headers=headers).json()
        cursor = deep["posts"][-1]["cursor"]
        cases = {
            "first": {},
            "deep": {"cursor": cursor},
            "search": {"q": "harbor"},
        }
        for name, params in cases.items():
            http.get(f"{base}/app/archive", params=params)  # warm: templates compiled, plans cached
            page: list[float] = []
            api: list[float] = []
            for n in range(200):
                # A different `since` far in the past each time keeps every request out of the API's cache
                # (the page has none); the rows are the same.
                since = (date(2000, 1, 1) + timedelta(days=n)).isoformat()
                start = time.perf_counter()
                response = http.get(f"{base}/app/archive", params={**params, "since": since})
                page.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200 and 'class="post"' in response.text, response.text[:500]
                start = time.perf_counter()
                response = http.get(
                    f"{base}/api/posts",
                    params={**params, "limit": 30, "since": f"{since}T00:00:00Z"},
                    headers=headers,
                )
                api.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
            report(f"archive_page_{name}_p50", median(page), "ms")
            report(f"archive_page_{name}_p99", percentile(page, 99), "ms")
            report(f"archive_page_{name}_vs_api_json_p50_ratio", median(page) / median(api), "x")


def main() -> None:
    with throwaway_cluster() as cluster:
        url = create_migrated_database(cluster, "bench_read")
        started = time.perf_counter()
        users = seed(url)
        report("read_api_seed_1m_posts", time.perf_counter() - started, "s")
        sql_figures(url, users[len(users) // 2])
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TROVE_TOKEN_KEYS": f"b:{generate_key()}",
            "PYTHONPATH": str(PROJECT_ROOT),
            "TROVE_STATE_DIR": str(Path(cluster.root)),
            "TROVE_PLATFORMS": "",
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "trove.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            token = issue_local_token(users[len(users) // 2])
            uncached_rps, uncached = asyncio.run(load(base, token, 400, 8, vary=True))
            cached_rps, cached = asyncio.run(load(base, token, 2000, 8, vary=False))
            archive_page_figures(base, token)
        finally:
            service.terminate()
            service.wait(timeout=30)
    report("api_posts_uncached_throughput", uncached_rps, "req/s")
    report("api_posts_uncached_p50", median(uncached), "ms")
    report("api_posts_uncached_p99", percentile(uncached, 99), "ms")
    report("api_posts_cached_throughput", cached_rps, "req/s")
    report("api_posts_cached_p50", median(cached), "ms")
    report("api_posts_cached_p99", percentile(cached, 99), "ms")
    report("api_posts_cached_vs_uncached_ratio", cached_rps / uncached_rps, "x")


if __name__ == "__main__":
    main()
