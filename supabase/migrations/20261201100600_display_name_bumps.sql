-- The feeds name their author (the user's display name): a new name is a change a reader can see, so it
-- bumps the user's archive version like a post does (cached pages and ETags turn over at once).
create function trove_private.bump_archive_version_of_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.archive_versions as v (user_id, version, changed_at)
    values (new.id, 1, now())
    on conflict (user_id) do update set version = v.version + 1, changed_at = now();
    return null;
end;
$$;

revoke execute on function trove_private.bump_archive_version_of_user() from public;

create trigger users_bump_archive_version_on_display_name
after update of display_name on public.users
for each row
when (old.display_name is distinct from new.display_name)
execute function trove_private.bump_archive_version_of_user();
