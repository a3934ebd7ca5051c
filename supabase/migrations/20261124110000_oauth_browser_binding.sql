-- An OAuth connect flow is bound to the browser that started it, not only to the Trove user: start sets
-- an HttpOnly cookie holding a random value and keeps its SHA-256 here; the callback must present it.
-- A row written without one (anything but the HTTP service's start) is bound to a random value nobody
-- holds, so it can never be completed; that is also what the flows in progress at this migration get.
alter table public.oauth_states
add column browser_hash text not null default encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex');

alter table public.oauth_states
add constraint oauth_states_browser_hash_check check (browser_hash ~ '^[0-9a-f]{64}$');

comment on column public.oauth_states.browser_hash is
'sha256 (hex) of the browser-binding cookie set by start; the callback must present the cookie';
