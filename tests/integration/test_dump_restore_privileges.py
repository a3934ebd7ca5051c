"""The schema as a dump restores safely: a schema-only dump of a migrated database (trove.db.schema's
`restorable_dump`), restored into a fresh Supabase-like database, whose default privileges grant everything
created in public to anon, authenticated and service_role, comes back with exactly the migrated privileges:
every table's, view's, column's, sequence's and function's, for each API role."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from tests.conftest import create_database, drop_database

from trove.db.cluster import Cluster, pg_bindir
from trove.db.migrate import apply_local_stack, migrate
from trove.db.schema import API_ROLES, APP_SCHEMAS, explicit_privileges, pg_dump_schema, restorable_dump

# Every privilege each API role effectively has (has_*_privilege: direct, through PUBLIC or a granted role)
# on every relation, column and function of the application's schemas, as (kind, object, role, privilege).
EFFECTIVE_PRIVILEGES = """
with roles as (select unnest(%(roles)s::text[]) as role),
relations as (
    select c.oid, c.relkind, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name
    from pg_class as c
    inner join pg_namespace as n on c.relnamespace = n.oid
    where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select 'table', r.name, roles.role, p.privilege
from relations as r
cross join roles
cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as p (privilege)
where r.relkind <> 'S' and has_table_privilege(roles.role, r.oid, p.privilege)
union all
select 'sequence', r.name, roles.role, p.privilege
from relations as r
cross join roles
cross join unnest(array['USAGE', 'SELECT', 'UPDATE']) as p (privilege)
where r.relkind = 'S' and has_sequence_privilege(roles.role, r.oid, p.privilege)
union all
select 'column', r.name || '.' || quote_ident(a.attname), roles.role, p.privilege
from relations as r
inner join pg_attribute as a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
cross join roles
cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) as p (privilege)
where r.relkind <> 'S' and has_column_privilege(roles.role, r.oid, a.attnum, p.privilege)
union all
select 'function', f.oid::regprocedure::text, roles.role, 'EXECUTE'
from pg_proc as f
inner join pg_namespace as n on f.pronamespace = n.oid
cross join roles
where n.nspname = any(%(schemas)s) and has_function_privilege(roles.role, f.oid, 'EXECUTE')
union all
select 'schema', quote_ident(n.nspname), roles.role, p.privilege
from pg_namespace as n
cross join roles
cross join unnest(array['USAGE', 'CREATE']) as p (privilege)
where n.nspname = any(%(schemas)s) and has_schema_privilege(roles.role, n.oid, p.privilege)
"""
OBJECTS = """
select count(*) filter (where kind = 'relation'), count(*) filter (where kind = 'function') from (
    select 'relation' as kind from pg_class
    where relnamespace::regnamespace::text = any(%(schemas)s) and relkind in ('r', 'p', 'v', 'm', 'f', 'S')
    union all
    select 'function' from pg_proc where pronamespace::regnamespace::text = any(%(schemas)s)
) as o
"""


def effective_privileges(conninfo: str) -> set[tuple[str, str, str, str]]:
    with psycopg.connect(conninfo) as conn:
        # Names printed the same way in both databases.
        conn.execute("select set_config('search_path', '', true)")
        rows = conn.execute(EFFECTIVE_PRIVILEGES, {"roles": list(API_ROLES), "schemas": list(APP_SCHEMAS)})
        return {tuple(row) for row in rows.fetchall()}


def restore(conninfo: str, dump: str) -> None:
    proc = subprocess.run(
        [str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", conninfo],
        input=dump,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def supabase_like_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh database as a new Supabase project has it (supabase/local/: roles, auth, extensions schema and
    Supabase's default privileges), without Trove's schema."""
    name = f"restore_{uuid.uuid4().hex[:16]}"
    url = create_database(pg_cluster, name)
    with psycopg.connect(url, autocommit=True) as conn:
        apply_local_stack(conn)
        # The premise: what the postgres role creates in public is granted to every API role by default.
        defaults = conn.execute(
            """
            select d.defaclobjtype, array_agg(distinct a.grantee::regrole::text order by a.grantee::regrole::text)
            from pg_default_acl as d, aclexplode(d.defaclacl) as a
            where d.defaclnamespace = 'public'::regnamespace and d.defaclrole = 'postgres'::regrole
            group by d.defaclobjtype
            """
        ).fetchall()
    assert dict(defaults) == {kind: sorted(API_ROLES) for kind in ("r", "S", "f")}
    try:
        yield url
    finally:
        drop_database(pg_cluster, name)


def test_a_restored_dump_has_exactly_the_migrated_privileges(empty_db_url: str, supabase_like_url: str) -> None:
    migrate(empty_db_url, local_stack=True, log=lambda _: None)
    restore(supabase_like_url, restorable_dump(empty_db_url))

    original = effective_privileges(empty_db_url)
    restored = effective_privileges(supabase_like_url)
    widened = sorted(restored - original)
    narrowed = sorted(original - restored)
    assert not widened and not narrowed, f"widened: {widened[:20]}\nnarrowed: {narrowed[:20]}"
    # The comparison covered the whole schema, and the API was restored with its grants.
    with psycopg.connect(supabase_like_url) as conn:
        relations, functions = conn.execute(OBJECTS, {"schemas": list(APP_SCHEMAS)}).fetchone()
    assert relations >= 20 and functions >= 40
    assert ("table", "public.posts", "authenticated", "SELECT") in restored
    assert ("table", "public.posts", "anon", "INSERT") not in restored
    assert not any(
        row[1].startswith("public.connected_accounts.access_token") and row[2] == "authenticated" for row in restored
    )
    assert not any(row[0] == "function" and row[1].startswith("public.feed(") and row[2] == "anon" for row in restored)


def test_an_object_pg_dump_writes_no_privileges_for_gets_explicit_ones(empty_db_url: str) -> None:
    """A table whose privileges are Postgres' built-in default has no ACL entry in pg_dump's output: it gets
    one of its own, before the default privileges (which pg_restore applies after every object)."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create schema trove_private")
        conn.execute("create table trove_private.plain (id int)")
        conn.execute("create table public.granted (id int)")
        conn.execute("grant select on public.granted to public")
        conn.execute("alter default privileges in schema public grant select on tables to public")
    dump = explicit_privileges(pg_dump_schema(empty_db_url), empty_db_url, roles=("public",))
    plain = dump.index("REVOKE ALL ON TABLE trove_private.plain FROM public;")
    granted = dump.index(
        "REVOKE ALL ON TABLE public.granted FROM public;\nGRANT SELECT ON TABLE public.granted TO PUBLIC;"
    )
    assert granted < plain < dump.index("Type: DEFAULT ACL;")
    assert dump.count("REVOKE ALL ON TABLE") == 2
