-- pg_cron as Supabase installs it (`create extension pg_cron with schema pg_catalog`; its jobs live in the
-- schema cron): in the one database its scheduler serves (cron.database_name, postgres as on Supabase) and
-- only where it is preloaded. The migrations never create it; they schedule their jobs where it exists.
do $cron$
begin
    if current_database() = current_setting('cron.database_name', true)
        and 'pg_cron' = any(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
        and exists (select from pg_available_extensions where name = 'pg_cron') then
        create extension if not exists pg_cron with schema pg_catalog;
    end if;
end;
$cron$;
