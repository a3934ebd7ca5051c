"""The OAuth connect flow's single-use states (`public.oauth_states`): bound to the user who started the flow
and, by the hash of a cookie, to their browser. Only hashes are stored."""

# A new state; when it expires. Parameters: state hash, user id, platform, redirect_to, browser hash,
# session (encrypted JSON), the consent URL.
INSERT_STATE = """
    insert into public.oauth_states (state_hash, user_id, platform, redirect_to, browser_hash, session,
                                     authorize_url)
    values (%s, %s, %s, %s, %s, %s, %s)
    returning expires_at
"""

# The consent URL of a live state (a local-stack handoff link goes on to it). Parameters: state hash, platform.
LIVE_AUTHORIZE_URL = """
    select authorize_url from public.oauth_states
    where state_hash = %s and platform = %s and used_at is null and expires_at > now()
"""

# Consume a live state, whichever browser presents it; no row when it is unknown, used or expired.
# Parameters: state hash, platform. Columns: user_id, redirect_to, browser_hash, session (encrypted).
CLAIM_STATE = """
    with claimed as (
        select state_hash, session from public.oauth_states
        where state_hash = %s and platform = %s and used_at is null and expires_at > now()
        for update
    )
    update public.oauth_states as s set used_at = now(), session = null  -- a private key: kept no longer
    from claimed
    where s.state_hash = claimed.state_hash
    returning s.user_id::text, s.redirect_to, s.browser_hash, claimed.session
"""

# Why a state could not be claimed. Parameters: state hash. Columns: used, expired.
STATE_REFUSAL = "select used_at is not null, expires_at <= now() from public.oauth_states where state_hash = %s"
