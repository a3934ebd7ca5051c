-- trove_private holds trigger and SECURITY DEFINER functions. PostgREST exposes only `public`, and
-- anon and authenticated get no USAGE here, so nothing in this schema is callable over the API. The engine
-- (the worker and the HTTP service, as service_role) calls the functions granted to it one by one, and the
-- triggers on the tables it writes call helpers here with its rights.

create schema trove_private;
revoke all on schema trove_private from public;
grant usage on schema trove_private to service_role;

-- Every table with an updated_at keeps it current through this trigger function.
create function trove_private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

-- posts, ingested data and sync logs carry user_id for RLS; it always follows the account, so a writer
-- can never file a row under somebody else's user.
create function trove_private.user_id_from_account()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.account_id is not null then
        select ca.user_id into new.user_id
        from public.connected_accounts as ca
        where ca.id = new.account_id;
    end if;
    return new;
end;
$$;

revoke execute on function trove_private.set_updated_at() from public;
revoke execute on function trove_private.user_id_from_account() from public;
