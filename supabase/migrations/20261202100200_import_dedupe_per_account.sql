-- A record read from an export is stored once per account, not once per platform: two users importing the
-- same public repository, or a user importing again after deleting the account, each keep their own records.
drop index public.ingested_items_import_dedupe_idx;

create unique index ingested_items_import_dedupe_idx on public.ingested_items (account_id, external_id)
where source = 'import' and external_id is not null;
