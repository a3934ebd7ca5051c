-- A media file the platform lists but does not give (Instagram serves a reel with copyrighted audio without
-- its video URL): recorded as unavailable with the platform's reason and no URL, so the post shows what is
-- missing and why. If the platform gives a URL later, the row is queued for download again.
alter table public.media_downloads drop constraint media_downloads_original_url_check;

alter table public.media_downloads add constraint media_downloads_original_url_check check (
    original_url ~* '^https?://' or (original_url = '' and status = 'unavailable' and error is not null)
);
