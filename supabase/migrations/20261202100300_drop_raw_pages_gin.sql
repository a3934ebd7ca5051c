-- The GIN index on every raw page and event (ingested_items.payload) cost more than the payloads themselves:
-- ~7 KB per archived post of ~29 KB in all (bench/bench_storage.py), for a query nothing runs (the engine
-- looks raw items up by id and by external id; reprocessing reads ingested_posts). Ad-hoc containment
-- queries over platform fields keep ingested_posts.post_data's GIN index (one row per post, the latest form).
drop index public.ingested_items_payload_idx;
