-- A user's archive version changing is announced (NOTIFY trove_archive_changed, the user's id): each HTTP
-- process keeps the versions it has read and forgets one when told, instead of reading it on every request.
-- The payload names only the user, so Postgres folds a transaction's announcements into one per user; it is
-- delivered at commit, when the new version can be read.
create function trove_private.announce_archive_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_notify('trove_archive_changed', new.user_id::text);
    return null;
end;
$$;

revoke execute on function trove_private.announce_archive_change() from public;

create trigger archive_versions_announce
after insert or update on public.archive_versions
for each row execute function trove_private.announce_archive_change();
