-- Local demo data: one Trove user. Signing up through Auth creates the matching public.users row.
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, email_confirmed_at)
values (
    '00000000-0000-4000-8000-000000000001',
    'authenticated',
    'authenticated',
    'demo@trove.local',
    '{"provider": "email", "providers": ["email"]}',
    '{"name": "Demo User"}',
    now()
)
on conflict (id) do nothing;
