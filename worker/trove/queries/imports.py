"""Imports of export files (`public.imports`, a work queue like the others; see imports.runner): the
import's row, the account an export belongs to, its raw records and the files copied from it."""

# Hand in a file: a new import, or the unfinished import of the same file (joined, and resumed). A new one
# is queued for the worker, or, with a holder (`trove import` runs it itself), taken by it at once, so no
# worker claims it in between. Parameters: user, file name, file path, sha256, byte size, holder (or None),
# lease. Columns: id, whether it is new.
CREATE_IMPORT = """
    with existing as (
        select id from public.imports
        where user_id = %(user)s and file_sha256 = %(sha)s and status in ('pending', 'processing', 'failed')
    ), created as (
        insert into public.imports (user_id, file_name, file_path, file_sha256, byte_size, status, locked_by,
                                    locked_until, attempts, started_at)
        select %(user)s, %(name)s, %(path)s, %(sha)s, %(size)s,
               case when %(holder)s::text is null then 'pending' else 'processing' end::public.processing_status_enum,
               %(holder)s::text, case when %(holder)s::text is null then null else now() + %(lease)s::interval end,
               case when %(holder)s::text is null then 0 else 1 end,
               case when %(holder)s::text is null then null else now() end
        where not exists (select 1 from existing)
        on conflict do nothing
        returning id
    )
    select id::text, true from created
    union all
    select id::text, false from existing
"""

# What a run needs. Parameters: import id. Columns: user_id, file_name, file_path, progress, sync_log_id.
IMPORT_JOB = """
    select user_id::text, file_name, file_path, progress, sync_log_id::text
    from public.imports where id = %s
"""

# The file is read: whose export it is and its log. Parameters: platform, account, log, import id.
IMPORT_STARTED = "update public.imports set platform = %s, account_id = %s, sync_log_id = %s where id = %s"

# Where the import stands (records done: where a killed import resumes). Parameters: progress (Jsonb), id.
IMPORT_PROGRESS = "update public.imports set progress = %s where id = %s"

# Its status for its owner, run as the user (RLS). Parameters: import id (text: a malformed id is no row).
# Columns: see http/imports.py.
IMPORT_STATUS = """
    select id::text, status::text, platform::text, account_id::text, sync_log_id::text, file_name, byte_size,
           progress, error_message, created_at, started_at, completed_at
    from public.imports where id::text = %s
"""

# An unfinished import waiting for this file (handed in again). Parameters: file path.
UNFINISHED_WITH_FILE = """
    select 1 from public.imports where file_path = %s and status in ('pending', 'processing', 'failed') limit 1
"""

# --- the account ----------------------------------------------------------------------------------------

# The account with the platform's id. Parameters: platform, platform user id. Columns: id, user_id.
ACCOUNT_BY_PLATFORM_ID = """
    select id::text, user_id::text from public.connected_accounts where platform = %s and platform_user_id = %s
"""

# The user's account of that username (an export without the platform's id), connected ones first.
# Parameters: user, platform, username. Columns: id.
ACCOUNT_BY_USERNAME = """
    select id::text from public.connected_accounts
    where user_id = %s and platform = %s and lower(username) = lower(%s)
    order by (status = 'active') desc, created_at
    limit 1
"""

# An account known only from its export: not connected, never synced. Parameters: user, platform, platform
# user id, username, display name. Columns: id.
CREATE_EXPORT_ACCOUNT = """
    insert into public.connected_accounts (user_id, platform, platform_user_id, username, display_name, status,
                                           sync_enabled, metadata)
    values (%s, %s, %s, %s, %s, 'disconnected', false, '{"from_export": true}')
    returning id::text
"""

# What a run writes through (trove.store). Parameters: account id. Columns: id, user_id, platform,
# platform_user_id, username, sync_state.
ACCOUNT_FOR_IMPORT = """
    select id::text, user_id::text, platform::text, platform_user_id, username, sync_state
    from public.connected_accounts where id = %s
"""

# The run's log. Parameters: account, metadata (Jsonb). Columns: id.
CREATE_IMPORT_LOG = """
    insert into public.sync_logs (account_id, sync_type, status, metadata)
    values (%s, 'import', 'running', %s)
    returning id::text
"""

# A batch's counts. Parameters: fetched, created, updated, media copied, metadata (Jsonb), log.
COUNT_IMPORT_BATCH = """
    update public.sync_logs
    set posts_fetched = posts_fetched + %s, posts_created = posts_created + %s,
        posts_updated = posts_updated + %s, media_downloaded = media_downloaded + %s,
        metadata = metadata || %s
    where id = %s
"""

# A resumed import's log runs again. Parameters: log.
REOPEN_IMPORT_LOG = """
    update public.sync_logs set status = 'running', completed_at = null, error_message = null
    where id = %s and status <> 'running'
"""

# The run ended. Parameters: status (success, partial, failed), error message, error details (Jsonb), log.
FINISH_IMPORT_LOG = """
    update public.sync_logs set status = %s, error_message = %s, error_details = %s
    where id = %s and status = 'running'
"""

# --- records and posts ----------------------------------------------------------------------------------

# A raw record read from an export, once per identity and content; no row when it was imported before.
# Parameters: platform, account, event type, external id, payload (Jsonb). Columns: id.
INSERT_IMPORTED_ITEM = """
    insert into public.ingested_items (source, platform, account_id, event_type, external_id, payload, status,
                                       attempts, completed_at)
    values ('import', %s, %s, %s, %s, %s, 'completed', 1, now())
    on conflict do nothing
    returning id::text
"""

# Whose archive each of these platform posts is in (those archived; a deleted account's raw posts stay its
# user's, or nobody's). Parameters: platform, platform post ids
# (text[]). Columns: platform post id, user_id.
POST_OWNERS = """
    select ip.platform_post_id, coalesce(ca.user_id, ip.user_id)::text
    from public.ingested_posts as ip
    join public.connected_accounts as ca on ca.id = ip.account_id
    where ip.platform = %s and ip.platform_post_id = any(%s::text[])
"""

# The account's post archived from the API created in that second, of one of these types (an export record
# without the platform's id). Parameters: account, created at, types (text[]). Columns: platform post id.
MATCHING_POST = """
    select platform_post_id from public.posts
    where account_id = %s
      and created_at_platform >= date_trunc('second', %s::timestamptz)
      and created_at_platform < date_trunc('second', %s::timestamptz) + interval '1 second'
      and content_type::text = any(%s::text[])
      and not starts_with(platform_post_id, 'export:')
    order by platform_post_id
    limit 1
"""

# --- files ----------------------------------------------------------------------------------------------

# Which of these files are copied already (from an export, or downloaded). Parameters: user, platform, media
# keys (text[]). Columns: media key.
MEDIA_COPIED_ALREADY = """
    select media_key from public.media_downloads
    where user_id = %s and platform = %s and media_key = any(%s::text[]) and status = 'downloaded'
"""

# A file copied from the export: downloaded, without a URL (a row the API made keeps its URL, and stops
# waiting for its download). Parameters: post (raw post id), user, platform, key, path, type, size, sha256.
UPSERT_IMPORTED_MEDIA = """
    insert into public.media_downloads (ingested_post_id, user_id, platform, media_key, original_url, status,
                                        attempts, storage_path, content_type, byte_size, content_sha256,
                                        downloaded_at)
    values (%(post)s, %(user)s, %(platform)s, %(key)s, '', 'downloaded', 1, %(path)s, %(type)s, %(size)s,
            %(sha)s, now())
    on conflict (user_id, platform, media_key) do update
    set status = 'downloaded', storage_path = excluded.storage_path, content_type = excluded.content_type,
        byte_size = excluded.byte_size, content_sha256 = excluded.content_sha256, downloaded_at = now(),
        error = null, locked_by = null, locked_until = null
    where media_downloads.status <> 'downloaded'
"""

# --- `trove import` -------------------------------------------------------------------------------------

# The users an import may be for: one by email, or every user (when only one exists, no --user needed).
# Parameters: email (or None: all). Columns: id, email.
IMPORT_USERS = """
    select id::text, email from public.users
    where %(email)s::text is null or lower(email) = lower(%(email)s::text)
    order by created_at
    limit 20
"""

# Take the import for this process (the command runs it itself): a queued one, or one whose worker died.
# Parameters: worker, lease, import id. Columns: id; no row when a live worker holds it or it is finished.
CLAIM_IMPORT = """
    update public.imports
    set status = 'processing', locked_by = %s, locked_until = now() + %s, attempts = attempts + 1,
        started_at = now()
    where id = %s
      and (status in ('pending', 'failed') or (status = 'processing' and locked_until < now()))
    returning id::text
"""

# Who holds it now and how far it got. Parameters: import id. Columns: status, locked_by, progress,
# error_message, sync_log_id.
IMPORT_STATE = """
    select status::text, locked_by, progress, error_message, sync_log_id::text from public.imports where id = %s
"""
