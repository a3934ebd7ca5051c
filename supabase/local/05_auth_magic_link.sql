-- Supabase Auth's tables for sign-in links (magic links) and the PKCE flow, the columns Trove's local stand-in
-- of Auth's REST API uses (trove.http.local_auth: /auth/v1/otp, /verify, /token?grant_type=pkce), and the
-- sessions' authentication method claims (the access token's `amr`). For vanilla Postgres only: on Supabase,
-- Auth owns these tables. Only that service (which connects as the database owner) reads or writes them:
-- RLS is on with no policy, and the API roles have no privilege on them.
--
-- One difference from Supabase: one_time_tokens.token_hash holds the SHA-256 (hex) of the link's token, never
-- the token itself (Supabase stores the link's token there as it is).

do $$
begin
    create type auth.code_challenge_method as enum ('s256', 'plain');
exception
    when duplicate_object then null;
end
$$;

do $$
begin
    create type auth.one_time_token_type as enum (
        'confirmation_token',
        'reauthentication_token',
        'recovery_token',
        'email_change_token_new',
        'email_change_token_current',
        'phone_change_token'
    );
exception
    when duplicate_object then null;
end
$$;

-- A PKCE flow: its code challenge, and the auth code a verified link is answered with (exchanged once, with
-- the code verifier, for a session).
create table if not exists auth.flow_state (
    id uuid primary key,
    user_id uuid,
    auth_code text,
    code_challenge_method auth.code_challenge_method,
    code_challenge text,
    provider_type text not null,
    provider_access_token text,
    provider_refresh_token text,
    created_at timestamptz,
    updated_at timestamptz,
    authentication_method text not null,
    auth_code_issued_at timestamptz,
    invite_token text,
    referrer text,
    oauth_client_state_id uuid,
    linking_target_id uuid,
    email_optional boolean not null default false
);

create index if not exists idx_auth_code on auth.flow_state (auth_code);
create index if not exists idx_user_id_auth_method on auth.flow_state (user_id, authentication_method);
create index if not exists flow_state_created_at_idx on auth.flow_state (created_at desc);

-- A user's outstanding one-time token of each kind (a magic link's is a 'recovery_token', as Auth files it).
create table if not exists auth.one_time_tokens (
    id uuid primary key,
    user_id uuid not null references auth.users (id) on delete cascade,
    token_type auth.one_time_token_type not null,
    token_hash text not null,
    relates_to text not null,
    created_at timestamp without time zone not null default now(),
    updated_at timestamp without time zone not null default now(),
    check (char_length(token_hash) > 0)
);

create index if not exists one_time_tokens_token_hash_hash_idx on auth.one_time_tokens using hash (token_hash);
create index if not exists one_time_tokens_relates_to_hash_idx on auth.one_time_tokens using hash (relates_to);
create unique index if not exists one_time_tokens_user_id_token_type_key on auth.one_time_tokens (
    user_id, token_type
);

-- How each session was signed in to (password, magiclink, otp, ...): the access token's `amr` claim.
create table if not exists auth.mfa_amr_claims (
    session_id uuid not null references auth.sessions (id) on delete cascade,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    authentication_method text not null,
    id uuid not null,
    constraint amr_id_pk primary key (id),
    constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method)
);

-- When the user was last sent a sign-in link, as Supabase's auth.users has it: a link is valid for an hour
-- from then, and another is sent no sooner than a minute after.
alter table auth.users add column if not exists recovery_sent_at timestamptz;

alter table auth.flow_state enable row level security;
alter table auth.one_time_tokens enable row level security;
alter table auth.mfa_amr_claims enable row level security;

revoke all on table auth.flow_state, auth.one_time_tokens, auth.mfa_amr_claims
from public, anon, authenticated, service_role;
