-- Some failures are final without being "gone": a file over the size limit or of the wrong type will be the
-- same on every retry. give_up_work ends the item in its terminal state at once (attempts used up, so it is
-- not claimed again), reason recorded.
create function trove_private.give_up_work(
    p_queue text, p_id uuid, p_worker text, p_error text, p_now timestamptz default now()
)
returns text
language plpgsql
set search_path = ''
as $$
declare
    spec record;
    new_status text;
begin
    spec := trove_private.queue_spec(p_queue);
    execute format(
        $sql$
        update public.%1$I
        set status = %2$L, %3$I = left($4, 2000), %4$I = $1, locked_by = null, locked_until = null,
            attempts = greatest(attempts, $5)
        where id = $2 and locked_by = $3 and status = %5$L
        returning status::text
        $sql$,
        p_queue, spec.terminal_state, spec.error_column,
        case when p_queue = 'media_downloads' then 'last_attempt_at' else 'last_error_at' end,
        spec.working_state
    ) into new_status using p_now, p_id, p_worker, p_error, spec.max_attempts;
    return new_status;
end;
$$;

revoke execute on function trove_private.give_up_work(text, uuid, text, text, timestamptz) from public;
grant execute on function trove_private.give_up_work(text, uuid, text, text, timestamptz) to service_role;
