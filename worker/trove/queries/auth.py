"""Users (`public.users`, one per Supabase Auth user) and running a request as one of them: what PostgREST
does for a request carrying the user's JWT, so RLS decides what exists for them."""

# Whether Trove knows the user. Parameters: user id.
USER_EXISTS = "select 1 from public.users where id = %s::uuid"

# Inside a transaction: act as a signed-in user until RESET_ROLE or the transaction's end: the role
# (`set local role authenticated`, as PostgREST sets it) and the JWT claims auth.uid() reads, in one statement.
# Parameters: claims (JSON text).
ACT_AS_USER = "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"

# Back to the service role, once RLS has shown the row is the user's (for what only the service writes).
RESET_ROLE = "reset role"
