-- RLS matrix for public.post_interactions (tests.rls_matrix): the owner reads the comments, mentions and
-- insights on her posts; only the service writes them. Then the rules: one record per (account, kind, item),
-- a kind is a plain word, the user follows the account.
begin;
select plan(21);

select tests.create_two_archives();
insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id, text_content)
values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'comment', 'c-alice', 'nice one');
insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id)
values (tests.id('account', 'bob'), 'strava', 'bob-post-1', 'comment', 'c-bob');

select is(
    (
        select user_id from public.post_interactions
        where platform_item_id = 'c-alice'
    ),
    tests.id('user', 'alice'),
    'post_interactions: the user is the account''s, whatever the writer says'
);
select * from tests.rls_matrix(
    'post_interactions',
    p_row => $$ platform_item_id = 'c-alice' $$,
    p_insert => $$ insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id)
        values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'comment', 'c-{actor}') $$,
    p_update => $$ text_content = 'by {actor}' $$
);

insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id)
values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'comment', 'c-twice');
select throws_ok(
    $$ insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id)
       values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'comment', 'c-twice') $$,
    '23505', null, 'post_interactions: one record per account, kind and item (a repeated event updates it)'
);
select throws_ok(
    $$ insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id)
       values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'Drop Table', 'x') $$,
    '23514', null, 'post_interactions: a kind is a plain lower-case word'
);
select throws_ok(
    $$ insert into public.post_interactions (account_id, platform, platform_post_id, kind, platform_item_id, details)
       values (tests.id('account', 'alice'), 'strava', 'alice-post-1', 'comment', 'y', '[1]') $$,
    '23514', null, 'post_interactions: details is an object'
);

select finish();
rollback;
