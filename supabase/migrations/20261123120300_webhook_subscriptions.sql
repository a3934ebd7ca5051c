-- Push subscriptions belong to the application (Strava allows one per app): which subscription id is ours
-- (events carrying another are refused) and the hash of the verify token the handshake must present.
create table public.webhook_subscriptions (
    platform public.platform_enum primary key,
    subscription_id text,
    callback_url text not null,
    verify_token_hash text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    -- Strava does not sign its events and its subscription ids are guessable, so the callback URL we give
    -- Strava carries an unguessable secret path segment; only its hash is kept here. A subscription without
    -- one authenticates nothing: subscribe again to get a secret URL.
    callback_secret_hash text
);

create trigger webhook_subscriptions_set_updated_at
before update on public.webhook_subscriptions
for each row execute function trove_private.set_updated_at();

alter table public.webhook_subscriptions enable row level security;
revoke all on table public.webhook_subscriptions from anon, authenticated, service_role;
grant select, insert, update, delete on table public.webhook_subscriptions to service_role;
