"""Personal API keys (`public.api_keys`): stored as SHA-256 hashes, read-only, public mode only."""

# A new key; its id and creation time. Parameters: user id, name, prefix, key hash.
INSERT_KEY = """
    insert into public.api_keys (user_id, name, prefix, key_hash)
    values (%s, %s, %s, %s)
    returning id::text, created_at
"""

# The user's keys, run as the user (RLS). Columns: id, name, prefix, created_at, last_used_at, revoked_at.
LIST_KEYS = """
    select id::text, name, prefix, created_at, last_used_at, revoked_at from public.api_keys
    order by created_at
"""

# The key, when it is the user's: run as the user (RLS), another user's key is no row. Parameters: key id.
VISIBLE_KEY = "select id from public.api_keys where id::text = %s"

# Revocation is final: only the service writes revoked_at (an owner's grant could take it back), and a
# revoked key keeps its first revocation time. Parameters: key id.
REVOKE_KEY = "update public.api_keys set revoked_at = coalesce(revoked_at, now()) where id = %s"

# The user a live key belongs to (null for an unknown or revoked one). Parameters: key hash.
AUTHENTICATE_KEY = "select trove_private.authenticate_api_key(%s)::text"
