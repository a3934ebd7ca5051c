-- A post's engagement over time (the web app's post page and the latest figures on every archive page) is
-- read by post, newest last: without this index each lookup scans the user's whole history.
create index if not exists engagement_history_post_recorded_idx
on public.engagement_history (post_id, recorded_at);
