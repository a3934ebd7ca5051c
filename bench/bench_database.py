"""Foundation figures: how fast a test gets a fresh database (template clone vs migrating from scratch),
and what RLS costs on the main read pattern (a user's newest posts), as a ratio against the same query
run by service_role with an explicit user filter, in the same process."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import create_migrated_database, median, percentile, report, throwaway_cluster, timings_ms

USERS = 20
POSTS_PER_USER = 10_000
QUERY_REPEAT = 300


def seed(url: str) -> list[uuid.UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) select gen_random_uuid(), 'u' || n || '@bench.test'"
            " from generate_series(1, %s) as n",
            (USERS,),
        )
        conn.execute(
            "insert into public.connected_accounts (user_id, platform, platform_user_id, username)"
            " select id, 'strava', id::text, email from public.users"
        )
        conn.execute(
            """
            insert into public.posts (account_id, platform, platform_post_id, content_type, text_content,
                                      created_at_platform)
            select ca.id, 'strava', ca.id || '-' || n, 'activity', 'Morning run number ' || n,
                   now() - n * interval '1 hour'
            from public.connected_accounts as ca, generate_series(1, %s) as n
            """,
            (POSTS_PER_USER,),
        )
        conn.execute("analyze")
        return [row[0] for row in conn.execute("select id from public.users order by id")]


def main() -> None:
    with throwaway_cluster() as cluster:
        fresh = timings_ms(lambda: create_migrated_database(cluster, f"fresh_{uuid.uuid4().hex[:8]}"), 5)
        template_url = create_migrated_database(cluster, "bench_template")

        def clone() -> None:
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(f'create database "clone_{uuid.uuid4().hex[:8]}" template bench_template')

        clones = timings_ms(clone, 10)
        report("db_migrate_fresh_p50", median(fresh), "ms")
        report("db_clone_template_p50", median(clones), "ms")
        report("db_clone_speedup_vs_migrate", median(fresh) / median(clones), "x")

        users = seed(template_url)
        feed = "select id from public.posts {where} order by created_at_platform desc limit 50"
        with psycopg.connect(template_url, autocommit=True) as conn:
            user = users[len(users) // 2]

            def as_user() -> None:
                with conn.transaction():
                    conn.execute("set local role authenticated")
                    conn.execute(
                        "select set_config('request.jwt.claims', %s, true)",
                        (f'{{"sub": "{user}", "role": "authenticated"}}',),
                    )
                    assert len(conn.execute(feed.format(where="")).fetchall()) == 50

            def as_service() -> None:
                with conn.transaction():
                    conn.execute("set local role service_role")
                    rows = conn.execute(feed.format(where="where user_id = %s"), (user,)).fetchall()
                    assert len(rows) == 50

            rls = timings_ms(as_user, QUERY_REPEAT)
            direct = timings_ms(as_service, QUERY_REPEAT)
        report("feed_rls_authenticated_p50", median(rls), "ms")
        report("feed_rls_authenticated_p99", percentile(rls, 99), "ms")
        report("feed_service_role_filtered_p50", median(direct), "ms")
        report("feed_rls_overhead_ratio", median(rls) / median(direct), "x")


if __name__ == "__main__":
    main()
