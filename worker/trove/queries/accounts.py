"""Connected accounts (`public.connected_accounts`): connecting one, finding the one an event concerns, its
tokens (application-encrypted: loaded, refreshed under the row lock, re-encrypted by `trove keys rotate`),
its sync state, and disconnecting it."""

from psycopg import sql

# --- connecting (trove.accounts) --------------------------------------------------------------------------

# The account of a platform user, locked while it is (re)connected. Parameters: platform, platform user id.
# Columns: id, user_id.
LOCK_PLATFORM_ACCOUNT = """
    select id::text, user_id::text from public.connected_accounts
    where platform = %s and platform_user_id = %s
    for update
"""

# A new account; its id. Parameters: user id, platform, platform user id, username.
INSERT_ACCOUNT = """
    insert into public.connected_accounts (user_id, platform, platform_user_id, username)
    values (%s, %s, %s, %s)
    returning id::text
"""

# A (re)connected account: fresh tokens and profile, active again, its errors cleared; (metadata) is merged
# into what is stored. Parameters: access, refresh (encrypted), expires, binding, refresh_at, scope, username,
# display_name, avatar_url, metadata (Jsonb), subscribed, subscription_id, account.
CONNECT_ACCOUNT = """
    update public.connected_accounts
    set access_token = %(access)s, refresh_token = %(refresh)s, token_expires_at = %(expires)s,
        token_binding = %(binding)s, token_refresh_at = %(refresh_at)s, scope = %(scope)s, username = %(username)s,
        display_name = %(display_name)s, avatar_url = %(avatar_url)s,
        metadata = metadata || %(metadata)s, status = 'active', error_count = 0, error_message = null,
        webhook_subscribed = %(subscribed)s, webhook_subscription_id = %(subscription_id)s
    where id = %(account)s
"""

# --- finding and changing one ----------------------------------------------------------------------------

# The platform says the account has a new handle. Parameters: username, account id.
SET_USERNAME = "update public.connected_accounts set username = %s where id = %s"

# The platform says the account is not active there (deactivated, suspended): no syncing until it is again.
# Parameters: error message, account id.
SET_INACTIVE_ON_PLATFORM = """
    update public.connected_accounts set status = 'error', error_message = %s
    where id = %s and status = 'active'
"""

# The account is active on the platform again. Parameters: account id.
SET_ACTIVE_AGAIN = """
    update public.connected_accounts set status = 'active', error_message = null, error_count = 0
    where id = %s and status = 'error' and access_token is not null
"""

# The account a platform user id names (a webhook event's owner). Parameters: platform, platform user id.
PLATFORM_ACCOUNT_ID = "select id::text from public.connected_accounts where platform = %s and platform_user_id = %s"

# The account, when the user may see it: run as the user (RLS), another user's account is no row.
# Parameters: account id (a malformed id raises InvalidTextRepresentation).
VISIBLE_ACCOUNT = "select id from public.connected_accounts where id = %s::uuid"

# Where the sync got to (cursors, backfill done), committed with the page. Parameters: state (Jsonb), account.
SET_SYNC_STATE = "update public.connected_accounts set sync_state = %s where id = %s"

# A confirmed deauthorization: disconnected, tokens wiped, the archive kept. Parameters: account id.
DEAUTHORIZE_ACCOUNT = "select trove_private.deauthorize_account(%s)"

# --- tokens (trove.tokens) --------------------------------------------------------------------------------

# What trove.tokens reads of an account, in this order (it unpacks the row by position).
_ACCOUNT_COLUMNS = """
    id::text, user_id::text, platform::text, platform_user_id, username, access_token, refresh_token,
    token_expires_at, sync_state, token_binding, token_refresh_at
"""

# An account with its (encrypted) tokens. Parameters: account id.
LOAD_ACCOUNT = f"select {_ACCOUNT_COLUMNS} from public.connected_accounts where id = %s"

# The same, locked: a refresh holds the row lock for its whole duration, so two workers never refresh the
# same account at once. Parameters: account id.
LOCK_ACCOUNT = f"select {_ACCOUNT_COLUMNS} from public.connected_accounts where id = %s for update"

# Refreshed tokens and their binding (encrypted); a refresh that grants no scope keeps the stored one.
# Parameters: access, refresh, expires, binding, refresh_at, scope (or None), account.
SET_REFRESHED_TOKENS = """
    update public.connected_accounts
    set access_token = %(access)s, refresh_token = %(refresh)s, token_expires_at = %(expires)s,
        token_binding = %(binding)s, token_refresh_at = %(refresh_at)s, scope = coalesce(%(scope)s, scope)
    where id = %(account)s
"""

# --- key rotation (trove.keys) ----------------------------------------------------------------------------

# Every account holding a token. Columns: id.
ACCOUNTS_WITH_TOKENS = """
    select id from public.connected_accounts
    where access_token is not null or refresh_token is not null
    order by id
"""

# An account's tokens, locked while they are re-encrypted. Parameters: account id.
LOCK_TOKENS = (
    "select access_token, refresh_token, token_binding from public.connected_accounts where id = %s for update"
)

# One re-encrypted token: format with the column's sql.Identifier. Parameters: value, account id.
SET_TOKEN = sql.SQL("update public.connected_accounts set {} = %s where id = %s")
