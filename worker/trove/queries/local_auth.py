"""The local stand-in of Supabase Auth (trove.http.local_auth) and the demo user's password (trove.demo_login):
auth.users, auth.sessions, auth.refresh_tokens, auth.mfa_amr_claims, auth.one_time_tokens, auth.flow_state
(supabase/local/01_auth.sql, 04_auth_sessions.sql, 05_auth_magic_link.sql). Passwords are hashed by pgcrypto's
bcrypt (`extensions.crypt`, cost 10 as Auth's); refresh tokens and sign-in link tokens arrive here only as their
SHA-256 (hex)."""

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
    -- Addresses differing only in case (sign-up lowercases; rows made elsewhere may not): the same one each time.
    order by u.email = lower(%(email)s) desc, u.created_at, u.id
    limit 1
"""

# A session's `amr` claim, as Auth makes it: how it was signed in to, most recent first, each with when (epoch
# seconds). A session made before its claims were kept was signed in to with a password.
_AMR = """
    coalesce(
        (select jsonb_agg(
                    jsonb_build_object('method', c.authentication_method,
                                       'timestamp', extract(epoch from c.updated_at)::bigint)
                    order by c.updated_at desc)
         from auth.mfa_amr_claims as c where c.session_id = s.id),
        jsonb_build_array(
            jsonb_build_object('method', 'password', 'timestamp', extract(epoch from s.created_at)::bigint)
        )
    )
"""

# A new session with its first refresh token and its authentication method; the user signed in now.
# Parameters: user, key (the session's refresh token key), token (the first refresh token's hash), agent, ip,
# method (Auth's name for how the user signed in: password, magiclink, otp).
# Columns: session_id, amr (the access token's claim), then the user's.
START_SESSION = f"""
    with session as (
        insert into auth.sessions (id, user_id, refresh_token_hmac_key, user_agent, ip)
        select gen_random_uuid(), u.id, %(key)s, %(agent)s, %(ip)s::inet
        from auth.users as u where u.id = %(user)s::uuid
        returning id, user_id, created_at
    ), token as (
        insert into auth.refresh_tokens (instance_id, token, user_id, revoked, session_id)
        select '00000000-0000-0000-0000-000000000000', %(token)s, session.user_id::text, false, session.id
        from session
    ), claim as (
        insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)
        select gen_random_uuid(), session.id, session.created_at, session.created_at, %(method)s::text
        from session
        returning authentication_method, updated_at
    )
    update auth.users as u set last_sign_in_at = now()
    from session
    where u.id = session.user_id
    returning session.id::text as session_id,
              (select jsonb_agg(jsonb_build_object('method', claim.authentication_method,
                                                   'timestamp', extract(epoch from claim.updated_at)::bigint))
               from claim) as amr,
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
# session_expired, key, amr (the session's claim).
REFRESH_TOKEN = f"""
    select rt.id, rt.revoked, rt.updated_at + make_interval(secs => %s) < now(), s.id::text, s.user_id::text,
           coalesce(s.not_after <= now(), false), s.refresh_token_hmac_key, {_AMR}
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

# The user a sign-in link is asked for, locked (requests for one address take turns), with how many seconds
# are left before another link may be sent to them (null: one may be sent now). Parameters: email
# (lowercased), interval (seconds between links). Columns: id, wait.
LINK_USER = """
    select u.id::text,
           case when u.recovery_sent_at + make_interval(secs => %(interval)s) > now()
                then floor(extract(epoch from u.recovery_sent_at + make_interval(secs => %(interval)s) - now()))::int
           end
    from auth.users as u
    where lower(u.email) = %(email)s::text and u.aud = 'authenticated' and not u.is_sso_user and u.deleted_at is null
    limit 1
    for update
"""

# A sign-in link for a user: its token (replacing any earlier one) and, for the PKCE flow (a code challenge
# given), its flow state with the auth code the link is answered with (replacing any earlier one of the
# user's); the link sent now. Parameters: user, token (the link token's hash), email, challenge (or null).
ISSUE_LINK = """
    with stale as (
        delete from auth.flow_state where user_id = %(user)s::uuid and authentication_method = 'magiclink'
    ), flow as (
        insert into auth.flow_state (
            id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, authentication_method,
            created_at, updated_at
        )
        select gen_random_uuid(), %(user)s::uuid, gen_random_uuid()::text, 's256', %(challenge)s::text, 'magiclink',
               'magiclink', now(), now()
        where %(challenge)s::text is not null
    ), token as (
        insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to)
        values (gen_random_uuid(), %(user)s::uuid, 'recovery_token', %(token)s, %(email)s)
        on conflict (user_id, token_type) do update
        set id = excluded.id, token_hash = excluded.token_hash, relates_to = excluded.relates_to,
            created_at = excluded.created_at, updated_at = excluded.updated_at
    )
    update auth.users set recovery_sent_at = now() where id = %(user)s::uuid
"""

# A sign-in link's token, locked (a link is used once, however many open it at once), and whether it expired
# (the link is valid for `validity` seconds after it was sent). Parameters: hashes (the token's possible
# hashes), validity. Columns: token id, user id, expired.
LINK_TOKEN = """
    select t.id::text, u.id::text,
           coalesce(u.recovery_sent_at + make_interval(secs => %(validity)s) < now(), true)
    from auth.one_time_tokens as t
    join auth.users as u on t.user_id = u.id
    where t.token_type = 'recovery_token' and t.token_hash = any(%(hashes)s::text[]) and u.deleted_at is null
    limit 1
    for update of t
"""

# A sign-in link used: its token gone, its user's address confirmed (if it was not). Parameters: token, user.
USE_LINK = """
    with used as (
        delete from auth.one_time_tokens where id = %(token)s::uuid
    )
    update auth.users set email_confirmed_at = now(), updated_at = now()
    where id = %(user)s::uuid and email_confirmed_at is null
"""

# The auth code of the user's latest PKCE flow by the given method, marked issued now (from when it may be
# exchanged for 5 minutes). Parameters: user, method. Columns: auth code (no row: no such flow).
ISSUE_AUTH_CODE = """
    update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
    where id = (
        select f.id from auth.flow_state as f
        where f.user_id = %(user)s::uuid and f.authentication_method = %(method)s::text
        order by f.created_at desc
        limit 1
    ) and auth_code is not null and code_challenge is not null
    returning auth_code
"""

# A user's sign-in link flows, ended (a link used without its flow). Parameters: user.
END_LINK_FLOWS = "delete from auth.flow_state where user_id = %s::uuid and authentication_method = 'magiclink'"

# The PKCE flow an auth code belongs to, locked (a code is exchanged once, however many try at once), and
# whether it expired: `expiry` seconds after its code was issued (a sign-in link's) or after it began.
# Parameters: code, expiry. Columns: id, user_id, code_challenge, code_challenge_method, authentication_method,
# expired.
FLOW_STATE = """
    select f.id::text, f.user_id::text, f.code_challenge, f.code_challenge_method::text, f.authentication_method,
           coalesce(
               case when f.auth_code_issued_at is not null and f.authentication_method = 'magiclink'
                    then f.auth_code_issued_at else f.created_at end + make_interval(secs => %(expiry)s) < now(),
               true
           )
    from auth.flow_state as f
    where f.auth_code = %(code)s::text
    limit 1
    for update
"""

# A PKCE flow, ended (its code exchanged). Parameters: id.
END_FLOW = "delete from auth.flow_state where id = %s::uuid"

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
