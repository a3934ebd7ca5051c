-- The read API's page in one statement (issue 16): the HTTP service used to open a transaction, act as the
-- user (set_config of role and claims, as PostgREST does) and call the feed, four round trips for one page.
-- This does the same in one: it acts as the user, calls the feed as them (so RLS decides what they see,
-- exactly as before) and, the page read, acts as its caller again. Only the engine may call it
-- (trove_private: no USAGE for anon or authenticated, and execute granted to service_role alone): whoever
-- calls it names the user.
create function trove_private.feed_for_reader(
    p_user_id uuid,
    p_platforms public.platform_enum[],
    p_types public.content_type_enum[],
    p_since timestamptz,
    p_until timestamptz,
    p_query text,
    p_limit integer,
    p_cursor text,
    p_offset integer,
    p_public_only boolean
)
returns table (
    id uuid,
    platform public.platform_enum,
    content_type public.content_type_enum,
    text_content text,
    created_at_platform timestamptz,
    updated_at_platform timestamptz,
    post_data jsonb,
    media jsonb,
    cursor text,
    permalink text
)
language plpgsql
volatile
set search_path = ''
as $$
declare
    caller_role text := pg_catalog.current_setting('role');
    caller_claims text := pg_catalog.current_setting('request.jwt.claims', true);
begin
    if p_user_id is null then
        raise exception 'a reader is needed' using errcode = '22023';
    end if;
    perform pg_catalog.set_config(
        'request.jwt.claims',
        pg_catalog.json_build_object('sub', p_user_id, 'role', 'authenticated')::text,
        true
    );
    perform pg_catalog.set_config('role', 'authenticated', true);
    return query select * from public.feed(
        p_platforms, p_types, p_since, p_until, p_query, p_limit, p_cursor, p_offset, p_public_only
    );
    -- The rows are read (return query keeps them): the rest of a caller's transaction is the caller's again.
    perform pg_catalog.set_config('role', caller_role, true);
    perform pg_catalog.set_config('request.jwt.claims', coalesce(caller_claims, ''), true);
end;
$$;

revoke execute on function trove_private.feed_for_reader(
    uuid, public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text,
    integer, boolean
) from public;
grant execute on function trove_private.feed_for_reader(
    uuid, public.platform_enum[], public.content_type_enum[], timestamptz, timestamptz, text, integer, text,
    integer, boolean
) to service_role;
