-- pg_net's SQL surface, as Supabase's extension offers it (schema net: http_post, http_get, the request
-- queue and the response table), for vanilla Postgres only: the migrations call the same functions here and
-- on Supabase. Here `trove netd` (trove.netd) performs the queued requests, as pg_net's background worker
-- does there: asynchronously, once, without retrying.
do $net$
begin
    if exists (select from pg_extension where extname = 'pg_net') then
        return;  -- the real one
    end if;

    create schema if not exists net;

    create table if not exists net.http_request_queue (
        id bigserial primary key,
        method text not null,
        url text not null,
        headers jsonb not null default '{}',
        body bytea,
        timeout_milliseconds integer not null
    );

    create table if not exists net._http_response (
        id bigint,
        status_code integer,
        content_type text,
        headers jsonb,
        content text,
        timed_out boolean,
        error_msg text,
        created timestamptz not null default now()
    );
    create index if not exists _http_response_created_idx on net._http_response (created);

    create or replace function net.http_post(
        url text,
        body jsonb default '{}'::jsonb,
        params jsonb default '{}'::jsonb,
        headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
        timeout_milliseconds integer default 5000
    )
    returns bigint
    language plpgsql
    security definer
    set search_path = ''
    as $fn$
    declare
        request_id bigint;
    begin
        insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
        values ('POST', net._url_with_params(url, params), coalesce(headers, '{}'),
                convert_to(coalesce(body, '{}')::text, 'UTF8'), timeout_milliseconds)
        returning id into request_id;
        perform pg_notify('trove_net', request_id::text);
        return request_id;
    end;
    $fn$;

    create or replace function net.http_get(
        url text,
        params jsonb default '{}'::jsonb,
        headers jsonb default '{}'::jsonb,
        timeout_milliseconds integer default 5000
    )
    returns bigint
    language plpgsql
    security definer
    set search_path = ''
    as $fn$
    declare
        request_id bigint;
    begin
        insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
        values ('GET', net._url_with_params(url, params), coalesce(headers, '{}'), null, timeout_milliseconds)
        returning id into request_id;
        perform pg_notify('trove_net', request_id::text);
        return request_id;
    end;
    $fn$;

    -- The query string pg_net appends from `params` (values URL-encoded).
    create or replace function net._url_with_params(url text, params jsonb)
    returns text
    language sql
    immutable
    set search_path = ''
    as $fn$
        select url || coalesce(
            (select case when position('?' in url) > 0 then '&' else '?' end
                    || string_agg(p.key || '=' || replace(replace(replace(p.value, '%', '%25'), '&', '%26'), ' ', '%20'), '&')
             from jsonb_each_text(coalesce(params, '{}')) as p
             having count(*) > 0),
            ''
        )
    $fn$;

    revoke all on schema net from public;
    revoke all on all tables in schema net from public;
    revoke execute on all functions in schema net from public;
    grant usage on schema net to service_role;
    grant execute on function net.http_post(text, jsonb, jsonb, jsonb, integer) to service_role;
    grant execute on function net.http_get(text, jsonb, jsonb, integer) to service_role;
    grant select on net._http_response to service_role;
end;
$net$;
