-- Archive first, details later: list pages give every post in few calls; a post whose raw form is only a
-- summary (Strava's list items) is marked detail_pending, and the worker fetches its detail afterwards at
-- low priority within the rate-limit budget.
alter table public.ingested_posts
add column detail_pending boolean not null default false;

create index ingested_posts_detail_pending_idx on public.ingested_posts (account_id, received_at desc)
where detail_pending;

-- Platforms retry webhook deliveries (Strava up to 3 times): one stored event per delivery identity.
create unique index ingested_items_webhook_dedupe_idx on public.ingested_items (platform, external_id)
where source = 'webhook' and external_id is not null;
