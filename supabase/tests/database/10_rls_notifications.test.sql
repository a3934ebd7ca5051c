-- RLS matrix for public.notifications (tests.rls_matrix): select/insert/update/delete by anon, the owner
-- (alice), another user (bob) and service_role, each cell asserted. The owner reads her notifications, marks
-- them read and deletes them; only the engine (the service) writes them.
begin;
select plan(18);

select tests.create_two_archives();

select * from tests.rls_matrix(
    'notifications',
    p_row => $$ id = tests.id('notification', 'alice') $$,
    p_insert => $$ insert into public.notifications (user_id, kind, title)
        values (tests.id('user', 'alice'), 'sync_failing', 'by {actor}') $$,
    -- read_at is all a user may write: a different time per actor.
    p_update => $$ read_at = now() - interval '1 hour' * length('{actor}') $$,
    p_owner_may => array['select', 'update', 'delete'],
    p_other_row => $$ id = tests.id('notification', 'bob') $$
);

select finish();
rollback;
