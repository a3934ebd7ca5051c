-- OAuth connect flow (seed 2): the random `state` handed to the platform, stored hashed, single use and
-- short-lived, tied to the Trove user who started the flow. Only the HTTP service (service role) uses it.
create table public.oauth_states (
    state_hash text primary key,
    user_id uuid not null references public.users (id) on delete cascade,
    platform public.platform_enum not null,
    redirect_to text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '10 minutes',
    used_at timestamptz,

    constraint oauth_states_expiry_check check (expires_at > created_at)
);

create index oauth_states_user_id_idx on public.oauth_states (user_id);
create index oauth_states_expires_at_idx on public.oauth_states (expires_at);

alter table public.oauth_states enable row level security;
revoke all on table public.oauth_states from anon, authenticated, service_role;
grant select, insert, update, delete on table public.oauth_states to service_role;

-- Retention gains expired OAuth states (used or not, they are worthless after expiry).
create or replace function trove_private.purge_old_records(p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
    purged integer;
    more integer;
begin
    delete from public.sync_logs as l
    where l.started_at < p_now - interval '90 days'
        and l.status not in ('queued', 'running');
    get diagnostics purged = row_count;
    delete from public.health_checks as h where h.checked_at < p_now - interval '30 days';
    get diagnostics more = row_count;
    purged := purged + more;
    delete from public.oauth_states as s where s.expires_at < p_now - interval '1 day';
    get diagnostics more = row_count;
    purged := purged + more;
    if to_regclass('cron.job_run_details') is not null then
        execute 'delete from cron.job_run_details where end_time < $1' using p_now - interval '7 days';
        get diagnostics more = row_count;
        purged := purged + more;
    end if;
    return purged;
end;
$$;
