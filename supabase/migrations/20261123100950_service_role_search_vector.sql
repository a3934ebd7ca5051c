-- The sync writes posts and raw posts as service_role; their triggers call this helper with its rights.
-- (A migration of its own: 20261123100600_posts.sql had already been applied when this was found.)
grant usage on schema trove_private to service_role;
grant execute on function trove_private.post_search_vector(text, public.platform_enum, text, uuid) to service_role;
