-- Strava does not sign its events and its subscription ids are guessable, so the callback URL we give
-- Strava carries an unguessable secret path segment; only its hash is kept here. A subscription without
-- one (made before this migration) authenticates nothing: subscribe again to get a secret URL.
alter table public.webhook_subscriptions add column callback_secret_hash text;

-- What processing a stored event did: an event is a hint, never the truth. Destructive events
-- (deauthorize, delete) are applied only when the platform confirms them; otherwise they stay stored,
-- marked not_confirmed, and change nothing.
alter table public.ingested_items add column outcome text;

alter table public.ingested_items
add constraint ingested_items_outcome_check check (outcome in ('applied', 'ignored', 'not_confirmed'));

comment on column public.ingested_items.outcome is
'applied: acted on; ignored: nothing to do; not_confirmed: the platform did not confirm it, nothing changed';
