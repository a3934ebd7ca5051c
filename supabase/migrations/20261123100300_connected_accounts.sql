-- connected_accounts: one platform account, owned by exactly one Trove user (webhooks are routed by the
-- platform's owner id, so the same account under two users would be ambiguous).
-- Tokens are ciphertext written by the application (AES-256-GCM, key id inside); the API roles can never
-- read those columns, not even on their own rows.

create table public.connected_accounts (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    platform public.platform_enum not null,
    platform_user_id text not null,
    username text not null,
    display_name text,
    avatar_url text,

    -- Null once wiped (deauthorized) or for platforms read without a token.
    access_token text,
    refresh_token text,
    token_expires_at timestamptz,
    scope text,

    webhook_subscribed boolean not null default false,
    webhook_subscription_id text,

    last_sync_at timestamptz,
    last_sync_status text,
    next_sync_at timestamptz,
    sync_enabled boolean not null default true,

    status public.account_status_enum not null default 'active',
    error_message text,
    error_count integer not null default 0,

    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    -- The engine's per-account position: the backfill cursor (saved with every page, so a failed backfill
    -- resumes where it stopped), whether the backfill finished, and the polling watermark. Connector-shaped
    -- JSON; users may read it (it shows how far the backfill got), only the service role writes it.
    sync_state jsonb not null default '{}',

    constraint connected_accounts_platform_account_key unique (platform, platform_user_id),
    constraint connected_accounts_error_count_check check (error_count >= 0),
    constraint connected_accounts_last_sync_status_check
    check (last_sync_status in ('success', 'failed', 'partial')),
    constraint connected_accounts_metadata_check check (jsonb_typeof(metadata) = 'object'),
    constraint connected_accounts_platform_user_id_check check (platform_user_id <> ''),
    constraint connected_accounts_sync_state_check check (jsonb_typeof(sync_state) = 'object')
);

create index connected_accounts_user_id_idx on public.connected_accounts (user_id);
create index connected_accounts_platform_idx on public.connected_accounts (platform);
create index connected_accounts_status_idx on public.connected_accounts (status);
create index connected_accounts_sync_schedule_idx on public.connected_accounts (sync_enabled, next_sync_at);
create index connected_accounts_token_expires_at_idx on public.connected_accounts (token_expires_at);

create trigger connected_accounts_set_updated_at
before update on public.connected_accounts
for each row execute function trove_private.set_updated_at();

alter table public.connected_accounts enable row level security;

revoke all on table public.connected_accounts from anon, authenticated, service_role;
-- Every column but access_token and refresh_token.
grant select (
    id, user_id, platform, platform_user_id, username, display_name, avatar_url, token_expires_at, scope,
    webhook_subscribed, webhook_subscription_id, last_sync_at, last_sync_status, next_sync_at,
    sync_enabled, status, error_message, error_count, metadata, created_at, updated_at, sync_state
) on table public.connected_accounts to authenticated;
-- Users pause/resume syncing and disconnect; accounts are created only by the OAuth callback (service
-- role), so nobody can claim a platform account that is not theirs.
grant update (sync_enabled) on table public.connected_accounts to authenticated;
grant delete on table public.connected_accounts to authenticated;
grant select, insert, update, delete on table public.connected_accounts to service_role;

create policy connected_accounts_select_own on public.connected_accounts
for select to authenticated
using ((select auth.uid()) = user_id);

create policy connected_accounts_update_own on public.connected_accounts
for update to authenticated
using ((select auth.uid()) = user_id)
with check ((select auth.uid()) = user_id);

create policy connected_accounts_delete_own on public.connected_accounts
for delete to authenticated
using ((select auth.uid()) = user_id);
