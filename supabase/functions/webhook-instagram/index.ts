// webhook-instagram: a relay to the Python service (supabase/functions/_shared/relay.ts);
// its deliveries are kept in the webhook inbox while the service is away.
import { serveRelay } from "../_shared/relay.ts";

serveRelay("webhook-instagram", { inbox: true }); // a delivery the service cannot take in time waits in the inbox
