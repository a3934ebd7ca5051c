-- Events from a platform's real-time stream (Bluesky's Jetstream) are stored raw like webhook events, once
-- each: a replay after a reconnect (the cursor goes back a few seconds on purpose) stores nothing twice.
alter type public.ingestion_source_enum add value if not exists 'stream';
