-- OAuth connect flow (seed 2): the random `state` handed to the platform, stored hashed, single use and
-- short-lived, tied to the Trove user who started the flow and to the browser that started it. Only the HTTP
-- service (service role) uses it. Expired states are purged by trove_private.purge_old_records.
create table public.oauth_states (
    state_hash text primary key,
    user_id uuid not null references public.users (id) on delete cascade,
    platform public.platform_enum not null,
    redirect_to text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '10 minutes',
    used_at timestamptz,

    -- Bound to the browser, not only to the Trove user: start sets an HttpOnly cookie holding a random value
    -- and keeps its SHA-256 here; the callback must present it. A row written without one (anything but the
    -- HTTP service's start) is bound to a random value nobody holds, so it can never be completed.
    browser_hash text not null default encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex'),

    constraint oauth_states_expiry_check check (expires_at > created_at),
    constraint oauth_states_browser_hash_check check (browser_hash ~ '^[0-9a-f]{64}$')
);

comment on column public.oauth_states.browser_hash is
'sha256 (hex) of the browser-binding cookie set by start; the callback must present the cookie';

create index oauth_states_user_id_idx on public.oauth_states (user_id);
create index oauth_states_expires_at_idx on public.oauth_states (expires_at);

alter table public.oauth_states enable row level security;
revoke all on table public.oauth_states from anon, authenticated, service_role;
grant select, insert, update, delete on table public.oauth_states to service_role;
