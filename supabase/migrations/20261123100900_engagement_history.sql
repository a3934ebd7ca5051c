-- engagement_history: snapshots of a post's engagement (likes, kudos, comments, views) over time, written
-- by the sync when the numbers change. user_id follows the post, for RLS.

create table public.engagement_history (
    id uuid primary key default gen_random_uuid(),
    post_id uuid not null references public.posts (id) on delete cascade,
    user_id uuid not null references public.users (id) on delete cascade,
    engagement_stats jsonb not null,
    recorded_at timestamptz not null default now(),

    constraint engagement_history_post_recorded_key unique (post_id, recorded_at),
    constraint engagement_history_stats_check check (jsonb_typeof(engagement_stats) = 'object')
);

create index engagement_history_user_id_idx on public.engagement_history (user_id);

create function trove_private.user_id_from_post()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    select p.user_id into new.user_id
    from public.posts as p
    where p.id = new.post_id;
    return new;
end;
$$;

revoke execute on function trove_private.user_id_from_post() from public;

create trigger engagement_history_user_id_from_post
before insert or update of post_id on public.engagement_history
for each row execute function trove_private.user_id_from_post();

alter table public.engagement_history enable row level security;

revoke all on table public.engagement_history from anon, authenticated, service_role;
grant select on table public.engagement_history to authenticated;
grant select, insert, update, delete on table public.engagement_history to service_role;

create policy engagement_history_select_own on public.engagement_history
for select to authenticated
using ((select auth.uid()) = user_id);
