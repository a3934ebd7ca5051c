-- The engine's per-account position: the backfill cursor (saved with every page, so a failed backfill
-- resumes where it stopped), whether the backfill finished, and the polling watermark. Connector-shaped
-- JSON; users may read it (it shows how far the backfill got), only the service role writes it.
alter table public.connected_accounts
add column sync_state jsonb not null default '{}',
add constraint connected_accounts_sync_state_check check (jsonb_typeof(sync_state) = 'object');

grant select (sync_state) on table public.connected_accounts to authenticated;
