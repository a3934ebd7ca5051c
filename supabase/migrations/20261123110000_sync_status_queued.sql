-- A sync requested but not started yet is 'queued': a manual "sync now" returns its sync_logs id at once
-- and the client polls it through queued -> running -> success / partial / failed / cancelled.
alter type public.sync_status_enum add value if not exists 'queued' before 'running';
