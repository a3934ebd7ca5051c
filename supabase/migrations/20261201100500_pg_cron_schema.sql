-- pg_cron belongs in pg_catalog, where Supabase installs it (Database > Extensions, or `create extension
-- pg_cron with schema pg_catalog`); Supabase's linter warns about extensions in public. The platform creates
-- it (supabase/local/02_pg_cron.sql on the local stack), and the schedules are registered only where it
-- exists. But 20261123150000_schedules created it where it was missing, without a schema: in public, the
-- first schema on the search path. pg_cron is not relocatable (no `alter extension ... set schema`), so where
-- it is in public, reinstall it in pg_catalog and register every job it had again (Trove's and any other,
-- each with its name, schedule, command, database, user and active flag; an unnamed job is named job-<id>).
-- Only its run history (cron.job_run_details, which Trove keeps 7 days) is lost. Anywhere else: nothing.
do $cron$
declare
    v_jobs jsonb;
    v_job record;
begin
    if not exists (select from pg_extension where extname = 'pg_cron' and extnamespace = 'public'::regnamespace) then
        return;
    end if;
    execute 'select coalesce(jsonb_agg(to_jsonb(j) order by j.jobid), ''[]'') from cron.job as j' into v_jobs;
    drop extension pg_cron;
    create extension pg_cron with schema pg_catalog;
    for v_job in
        select j.*
        from jsonb_to_recordset(v_jobs) as j (
            jobid bigint, jobname text, schedule text, command text, database text, username text, active boolean
        )
        order by j.jobid
    loop
        perform cron.schedule_in_database(
            coalesce(v_job.jobname, 'job-' || v_job.jobid),
            v_job.schedule,
            v_job.command,
            v_job.database,
            v_job.username,
            v_job.active
        );
    end loop;
end;
$cron$;
