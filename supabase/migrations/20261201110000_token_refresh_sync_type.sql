-- A sync run that only renews the account's token: some platforms' tokens lapse unless refreshed, even when
-- the account has nothing to sync (Instagram's long-lived tokens last 60 days). Its own value so that a
-- sync log says what the run was for. Added alone: a new enum value cannot be used in the transaction that
-- adds it.
alter type public.sync_type_enum add value if not exists 'token_refresh';
