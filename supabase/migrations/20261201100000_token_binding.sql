-- Tokens bound to a key (Bluesky's DPoP): the private key, the token endpoint and the last server nonce a
-- refresh needs, encrypted like the tokens and, like them, readable by the service role only. The OAuth
-- state keeps what the callback needs to finish (a PKCE verifier, the DPoP key, the issuer it was sent to),
-- encrypted, and the consent URL a local-stack handoff link goes on to.
alter table public.connected_accounts add column token_binding text;

comment on column public.connected_accounts.token_binding is
'encrypted JSON: what the tokens are bound to (a DPoP key) and what a refresh needs; service role only';

alter table public.oauth_states add column session text;
alter table public.oauth_states add column authorize_url text;

comment on column public.oauth_states.session is
'encrypted JSON kept from start to callback (PKCE verifier, DPoP key, issuer); never sent to the browser';

-- A revoked account loses its binding with its tokens.
create or replace function trove_private.wipe_token_binding()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.access_token is null and new.refresh_token is null then
        new.token_binding := null;
    end if;
    return new;
end;
$$;

revoke execute on function trove_private.wipe_token_binding() from public;

create trigger connected_accounts_wipe_token_binding
before update of access_token, refresh_token on public.connected_accounts
for each row execute function trove_private.wipe_token_binding();
