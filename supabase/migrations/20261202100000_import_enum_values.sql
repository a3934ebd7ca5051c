-- Imports from the platforms' export files: their raw records are kept like any other (source 'import') and
-- each import runs under a sync log of its own type. Added alone: a new enum value cannot be used in the
-- transaction that adds it.
alter type public.ingestion_source_enum add value if not exists 'import';
alter type public.sync_type_enum add value if not exists 'import';
