"""The migration runner's own statements (`trove.db.migrate`): the history table the Supabase CLI keeps, and
the lock that lets one run at a time per database."""

# The history table, in the shape the Supabase CLI records migrations in (version, statements, name), so
# `supabase db push` sees ours as applied. Idempotent; run statement by statement.
HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
alter table supabase_migrations.schema_migrations add column if not exists created_by text;
alter table supabase_migrations.schema_migrations add column if not exists idempotency_key text;
"""

# What was applied, with the statements it ran. Columns: version, statements.
APPLIED_STATEMENTS = "select version, statements from supabase_migrations.schema_migrations"

# What was applied, by name. Columns: version, name.
APPLIED_NAMES = "select version, name from supabase_migrations.schema_migrations"

# A migration applied (in its transaction). Parameters: version, statements, name.
RECORD_MIGRATION = """
    insert into supabase_migrations.schema_migrations (version, statements, name)
    values (%s, %s, %s)
"""

# One run at a time per database. Parameters: the lock key.
LOCK = "select pg_advisory_lock(%s)"
UNLOCK = "select pg_advisory_unlock(%s)"

# `trove db schema`: the database a throwaway cluster migrates to dump the schema.
SCHEMA_DATABASE = "trove_schema"
CREATE_SCHEMA_DATABASE = f"create database {SCHEMA_DATABASE}"
