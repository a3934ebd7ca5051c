// oauth-strava: a relay to the Python service (supabase/functions/_shared/relay.ts).
import { serveRelay } from "../_shared/relay.ts";

serveRelay("oauth-strava");
