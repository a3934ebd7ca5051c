"""The local stand-in of Supabase Auth (trove.http.local_auth) and the demo user's password (trove.demo_login):
auth.users, auth.sessions, auth.refresh_tokens (supabase/local/01_auth.sql, 04_auth_sessions.sql). Passwords
are hashed by pgcrypto's bcrypt (`extensions.crypt`, cost 10 as Auth's); refresh tokens arrive here only as
their SHA-256 (hex)."""

# The user object's columns, as every statement below that returns a user gives them.
_USER = """
    u.id::text as id, u.aud, u.role, u.email, u.phone, u.email_confirmed_at, u.raw_app_meta_data,
    u.raw_user_meta_data, u.created_at, u.updated_at, u.last_sign_in_at, u.is_anonymous
"""

# A new user, confirmed at once (Auth with autoconfirm), unless the address is taken (no row then).
# Parameters: email (lowercased), password, data (JSON text: the user's metadata).
SIGN_UP = f"""
    insert into auth.users as u (
        instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, raw_app_meta_data,
        raw_user_meta_data, created_at, updated_at
    )
    select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
           %(email)s::text, extensions.crypt(%(password)s::text, extensions.gen_salt('bf', 10)), now(),
           '{{"provider": "email", "providers": ["email"]}}', %(data)s::jsonb, now(), now()
    where not exists (select from auth.users where lower(email) = %(email)s::text and not is_sso_user)
    returning {_USER}
"""

# The password check, as long for an unknown address as for a known one: a row whatever the address, whose
# `attempt` is the password hashed with the user's salt (with `dummy`'s when there is no such user or no
# bcrypt hash), to compare with `stored`. Parameters: email, password, dummy (a bcrypt salt).
# Columns: id (null: no such user), stored, attempt, confirmed.
CHECK_PASSWORD = """
    select u.id::text, u.encrypted_password, extensions.crypt(
               %(password)s,
               coalesce(case when left(u.encrypted_password, 4) = '$2a$' then u.encrypted_password end, %(dummy)s)
           ),
           u.email_confirmed_at is not null
    from (select) as one
    left join auth.users as u
        on lower(u.email) = lower(%(email)s) and u.aud = 'authenticated' and not u.is_sso_user and u.deleted_at is null
    limit 1
"""

# A new session with its first refresh token; the user signed in now. Parameters: user, key (the session's
# refresh token key), token (the first refresh token's hash), agent, ip.
# Columns: session_id, session_created (epoch seconds), then the user's.
START_SESSION = f"""
    with session as (
        insert into auth.sessions (id, user_id, refresh_token_hmac_key, user_agent, ip)
        values (gen_random_uuid(), %(user)s::uuid, %(key)s, %(agent)s, %(ip)s::inet)
        returning id, user_id, created_at
    ), token as (
        insert into auth.refresh_tokens (instance_id, token, user_id, revoked, session_id)
        select '00000000-0000-0000-0000-000000000000', %(token)s, session.user_id::text, false, session.id
        from session
    )
    update auth.users as u set last_sign_in_at = now()
    from session
    where u.id = session.user_id
    returning session.id::text as session_id, extract(epoch from session.created_at)::bigint as session_created,
              {_USER}
"""

# The session a refresh token belongs to, locked: refreshes of one session take turns. Parameters: token hash.
LOCK_SESSION_OF_TOKEN = """
    select s.id from auth.sessions as s
    where s.id = (select rt.session_id from auth.refresh_tokens as rt where rt.token = %s)
    for update
"""

# The refresh token and its session, read once the session is locked. Parameters: token hash, reuse interval
# (seconds). Columns: id, revoked, reuse_over (revoked longer ago than the interval), session_id, user_id,
# session_expired, key, session_created (epoch seconds).
REFRESH_TOKEN = """
    select rt.id, rt.revoked, rt.updated_at + make_interval(secs => %s) < now(), s.id::text, s.user_id::text,
           coalesce(s.not_after <= now(), false), s.refresh_token_hmac_key, extract(epoch from s.created_at)::bigint
    from auth.refresh_tokens as rt
    join auth.sessions as s on rt.session_id = s.id
    where rt.token = %s
"""

# The session's tokens issued after the given one (a revoked token's successors). Parameters: session id,
# token id. Columns: token hash, revoked.
LATER_TOKENS = "select token, revoked from auth.refresh_tokens where session_id = %s::uuid and id > %s"

# Rotation: the token revoked, its successor issued, the session refreshed, and the user as they are now.
# Parameters: id (the used token's), parent (its hash), child (the successor's hash), session, user.
ROTATE = f"""
    with used as (
        update auth.refresh_tokens set revoked = true, updated_at = now() where id = %(id)s
    ), successor as (
        insert into auth.refresh_tokens (instance_id, token, user_id, revoked, parent, session_id)
        values ('00000000-0000-0000-0000-000000000000', %(child)s, %(user)s, false, %(parent)s, %(session)s::uuid)
    ), refreshed as (
        update auth.sessions set refreshed_at = timezone('utc', now()), updated_at = now()
        where id = %(session)s::uuid
    )
    select {_USER} from auth.users as u where u.id = %(user)s::uuid
"""

# A user, and whether a session exists (false when none was asked for). Parameters: user, session (or null).
USER_AND_SESSION = f"""
    select {_USER},
           exists (select from auth.sessions as s where s.id = %(session)s::uuid) as session_exists
    from auth.users as u where u.id = %(user)s::uuid
"""

# A user as they are now. Parameters: user.
USER = f"select {_USER} from auth.users as u where u.id = %s::uuid"

# Ending sessions (their refresh tokens go with them). Parameters: session id; user id; user id, session id.
END_SESSION = "delete from auth.sessions where id = %s::uuid"
END_USER_SESSIONS = "delete from auth.sessions where user_id = %s::uuid"
END_OTHER_SESSIONS = "delete from auth.sessions where user_id = %s::uuid and id <> %s::uuid"

# The demo user's password, hashed again only when it changed. Parameters: user, password.
# Columns: whether the user exists.
SET_PASSWORD = """
    with updated as (
        update auth.users
        set encrypted_password = extensions.crypt(%(password)s, extensions.gen_salt('bf', 10)), updated_at = now()
        where id = %(user)s::uuid
          and (encrypted_password is null
               or left(encrypted_password, 4) <> '$2a$'
               or extensions.crypt(%(password)s, encrypted_password) <> encrypted_password)
    )
    select exists (select from auth.users where id = %(user)s::uuid)
"""
