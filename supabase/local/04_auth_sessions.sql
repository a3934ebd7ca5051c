-- Supabase Auth's sessions and refresh tokens, the columns Trove's local stand-in of Auth's REST API uses
-- (trove.http.local_auth: /auth/v1/signup, /token, /logout, /user). For vanilla Postgres only: on Supabase,
-- Auth owns these tables. Only that service (which connects as the database owner) reads or writes them:
-- RLS is on with no policy, and the API roles have no privilege on them.
--
-- One difference from Supabase: `token` and `parent` hold a refresh token's SHA-256 (hex), never the token,
-- and `refresh_token_hmac_key` is the session's key from which each token's successor is derived
-- (trove.http.local_auth says why).

create table if not exists auth.sessions (
    id uuid primary key,
    user_id uuid not null references auth.users (id) on delete cascade,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    not_after timestamptz,
    refreshed_at timestamp,
    user_agent text,
    ip inet,
    refresh_token_hmac_key text
);

create index if not exists sessions_user_id_idx on auth.sessions (user_id);
create index if not exists sessions_not_after_idx on auth.sessions (not_after desc);

create table if not exists auth.refresh_tokens (
    instance_id uuid,
    id bigserial primary key,
    token varchar(255) unique,
    user_id varchar(255),
    revoked boolean,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    parent varchar(255),
    session_id uuid references auth.sessions (id) on delete cascade
);

create index if not exists refresh_tokens_instance_id_user_id_idx on auth.refresh_tokens (instance_id, user_id);
create index if not exists refresh_tokens_parent_idx on auth.refresh_tokens (parent);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index if not exists refresh_tokens_updated_at_idx on auth.refresh_tokens (updated_at desc);

-- When the user last signed in, as Supabase's auth.users has it (the user object Auth answers with shows it).
alter table auth.users add column if not exists last_sign_in_at timestamptz;

alter table auth.sessions enable row level security;
alter table auth.refresh_tokens enable row level security;

revoke all on table auth.sessions, auth.refresh_tokens from public, anon, authenticated, service_role;
revoke all on sequence auth.refresh_tokens_id_seq from public, anon, authenticated, service_role;
