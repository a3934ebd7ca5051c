-- Rate limits belong to the application, not the account (Strava: 15-minute and daily windows for the
-- whole app). One budget per platform and window, shared by every worker and user: responses' headers
-- set it, each request takes from it, and bulk work (backfills, detail fetches) may not spend the last
-- fifth of a window, so everyone's regular polling always finds room.

create table public.rate_limit_budgets (
    platform public.platform_enum not null,
    window_name text not null,
    window_length interval not null,
    request_limit integer not null,
    used integer not null default 0,
    resets_at timestamptz not null,
    updated_at timestamptz not null default now(),

    primary key (platform, window_name),
    constraint rate_limit_budgets_limit_check check (request_limit > 0),
    constraint rate_limit_budgets_used_check check (used >= 0),
    constraint rate_limit_budgets_window_check check (window_length > interval '0')
);

create trigger rate_limit_budgets_set_updated_at
before update on public.rate_limit_budgets
for each row execute function trove_private.set_updated_at();

-- Operational state of the application: no user reads or writes it.
alter table public.rate_limit_budgets enable row level security;
revoke all on table public.rate_limit_budgets from anon, authenticated, service_role;
grant select, insert, update, delete on table public.rate_limit_budgets to service_role;

-- The end of the window containing p_now; windows are aligned to UTC (Strava: :00/:15/:30/:45, midnight).
create function trove_private.window_end(p_length interval, p_now timestamptz)
returns timestamptz
language sql
immutable
set search_path = ''
as $$
    select date_bin(p_length, p_now, timestamptz '2000-01-01 00:00:00+00') + p_length
$$;

-- What the platform said in its headers (authoritative): limit and usage of one window.
create function trove_private.record_rate_limit(
    p_platform public.platform_enum,
    p_window_name text,
    p_window_length interval,
    p_limit integer,
    p_used integer,
    p_now timestamptz default now()
)
returns void
language sql
set search_path = ''
as $$
    insert into public.rate_limit_budgets as b (platform, window_name, window_length, request_limit, used, resets_at)
    values (p_platform, p_window_name, p_window_length, p_limit, greatest(p_used, 0),
            trove_private.window_end(p_window_length, p_now))
    on conflict (platform, window_name) do update
    set window_length = excluded.window_length,
        request_limit = excluded.request_limit,
        used = excluded.used,
        resets_at = excluded.resets_at
$$;

-- Take one request from the platform's budget. Null: go (it is counted). Otherwise the time to wait until.
-- p_class 'bulk' keeps a fifth of every window free for 'interactive' work.
create function trove_private.take_rate_limit(
    p_platform public.platform_enum,
    p_class text default 'interactive',
    p_now timestamptz default now()
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
    budget public.rate_limit_budgets%rowtype;
    wait_until timestamptz;
    reserve integer;
begin
    if p_class not in ('interactive', 'bulk') then
        raise exception 'unknown rate limit class %', p_class using errcode = '22023';
    end if;
    for budget in
        select * from public.rate_limit_budgets as b where b.platform = p_platform order by b.window_name for update
    loop
        if budget.resets_at <= p_now then
            budget.used := 0;
            budget.resets_at := trove_private.window_end(budget.window_length, p_now);
            update public.rate_limit_budgets as b set used = 0, resets_at = budget.resets_at
            where b.platform = budget.platform and b.window_name = budget.window_name;
        end if;
        reserve := case when p_class = 'bulk' then ceil(budget.request_limit * 0.2)::integer else 0 end;
        if budget.used + 1 > budget.request_limit - reserve then
            wait_until := greatest(wait_until, budget.resets_at);
        end if;
    end loop;
    if wait_until is not null then
        return wait_until;
    end if;
    update public.rate_limit_budgets as b set used = b.used + 1 where b.platform = p_platform;
    return null;
end;
$$;

revoke execute on function trove_private.window_end(interval, timestamptz) from public;
revoke execute on function trove_private.record_rate_limit(public.platform_enum, text, interval, integer, integer, timestamptz)
from public;
revoke execute on function trove_private.take_rate_limit(public.platform_enum, text, timestamptz) from public;
grant execute on function trove_private.window_end(interval, timestamptz) to service_role;
grant execute on function trove_private.record_rate_limit(public.platform_enum, text, interval, integer, integer, timestamptz)
to service_role;
grant execute on function trove_private.take_rate_limit(public.platform_enum, text, timestamptz) to service_role;
