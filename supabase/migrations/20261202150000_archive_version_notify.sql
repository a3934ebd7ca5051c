-- A user's archive version changing is announced (NOTIFY trove_archive_changed, the user's id): each HTTP
-- process keeps the versions it has read and forgets one when told, instead of reading it on every request.
-- The payload names only the user, so Postgres folds a transaction's announcements into one per user; it is
-- delivered at commit, when the new version can be read. A version going away (the user deleted) is a change
-- too, and emptying the table changes everyone's ('*').
create function trove_private.announce_archive_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'TRUNCATE' then
        perform pg_notify('trove_archive_changed', '*');
    elsif tg_op = 'DELETE' then
        perform pg_notify('trove_archive_changed', old.user_id::text);
    else
        perform pg_notify('trove_archive_changed', new.user_id::text);
    end if;
    return null;
end;
$$;

revoke execute on function trove_private.announce_archive_change() from public;

create trigger archive_versions_announce
after insert or update or delete on public.archive_versions
for each row execute function trove_private.announce_archive_change();

create trigger archive_versions_announce_truncate
after truncate on public.archive_versions
for each statement execute function trove_private.announce_archive_change();
