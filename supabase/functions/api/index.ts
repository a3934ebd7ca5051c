// api: the read API (/functions/v1/api/posts, /api/sync/...) relayed to the Python service's /api/...
// (supabase/functions/_shared/relay.ts); the service authenticates every request (a Supabase JWT or an API
// key). Export files are uploaded to the service directly: they are bigger than a function takes.
import { serveRelay } from "../_shared/relay.ts";

serveRelay("api");
