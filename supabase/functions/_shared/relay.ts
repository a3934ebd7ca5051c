// The one relay every Edge Function of Trove is: the request goes on to the Python service, which is the one
// implementation (no platform logic here). Method, path under /functions/v1, query and the raw body byte for
// byte (webhook signatures are over the exact bytes), the headers that matter (hop-by-hop ones dropped), and
// TROVE_RELAY_SECRET in X-Trove-Relay-Secret; the service's answer comes back as it is (redirects included:
// OAuth callbacks answer with one). TROVE_SERVICE_URL says where the service is.
//
// A webhook function relays with `{ inbox: true }`: when the service cannot be reached in time (it is down,
// or slower than the platform's deadline: Strava gives 2 s), the delivery is kept in the inbox (inbox.ts)
// and the platform gets its 200; the worker checks and processes it later.
import { keep } from "./inbox.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);
const TIMEOUT_MS = Number(Deno.env.get("TROVE_RELAY_TIMEOUT_MS") ?? "10000");
// A webhook must be answered within the platform's deadline, keeping it in the inbox included.
const WEBHOOK_TIMEOUT_MS = Number(
  Deno.env.get("TROVE_RELAY_WEBHOOK_TIMEOUT_MS") ?? "1500",
);
// The service's URLs the oauth-<platform> and webhook-<platform> functions reach.
const RELAYED = /^\/(oauth|webhook)-[a-z0-9_]+(\/|$)/;
// Answers that mean the service is not there (a proxy or load balancer in front of it).
const AWAY = new Set([502, 503, 504]);

export type RelayOptions = {
  // Keep a webhook delivery the service cannot take in time (see above).
  inbox?: boolean;
  // The service's routes this function reaches: by default its own URL under /functions/v1; the `api`
  // function reaches the read API, /api/... (the seeds' GET /api/posts, POST /api/sync/{account_id}).
  mount?: "functions" | "api";
};
const MAX_BODY = 1024 * 1024; // what the service takes of any body but an export file

function problem(status: number, error: string, detail: string): Response {
  return new Response(JSON.stringify({ error, detail }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export async function relay(
  request: Request,
  options: RelayOptions = {},
): Promise<Response> {
  const service = Deno.env.get("TROVE_SERVICE_URL");
  if (!service) {
    return problem(
      503,
      "not_configured",
      "TROVE_SERVICE_URL is not set for this function",
    );
  }
  const incoming = new URL(request.url);
  // Supabase hands a function its path with or without the /functions/v1 prefix: the service wants it.
  const path = incoming.pathname.replace(/^\/functions\/v1(?=\/)/, "");
  const api = options.mount === "api";
  // Only what the functions are for: never, say, the wake endpoint with the relay's credentials.
  if (api ? !/^\/api\/[^/]/.test(path) : !RELAYED.test(path)) {
    return problem(404, "not_found", "not a URL this function relays");
  }
  const target = `${service.replace(/\/+$/, "")}${
    api ? "" : "/functions/v1"
  }${path}${incoming.search}`;
  const headers = new Headers();
  for (const [name, value] of request.headers) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.set(name, value);
  }
  headers.set("x-trove-relay-secret", Deno.env.get("TROVE_RELAY_SECRET") ?? "");
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (request.method !== "GET" && request.method !== "HEAD") {
    body = new Uint8Array(await request.arrayBuffer());
    if (body.byteLength > MAX_BODY) {
      return problem(413, "too_large", `the body is over ${MAX_BODY} bytes`);
    }
  }
  const inbox = options.inbox === true && request.method === "POST" &&
    body !== undefined;
  let answer: Response | undefined;
  let timedOut = false;
  try {
    answer = await fetch(target, {
      method: request.method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(inbox ? WEBHOOK_TIMEOUT_MS : TIMEOUT_MS),
    });
  } catch (error) {
    timedOut = error instanceof DOMException && error.name === "TimeoutError";
  }
  if (inbox && (answer === undefined || AWAY.has(answer.status))) {
    await answer?.body?.cancel();
    answer = undefined;
    const kept = await keep(
      path.replace(/^\//, ""),
      incoming.search.replace(/^\?/, ""),
      request.headers,
      body!,
      HOP_BY_HOP,
    );
    if (kept === "kept") {
      return new Response(JSON.stringify({ status: "queued" }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }
    if (kept === "full") {
      return problem(
        503,
        "inbox_full",
        "the service is away and its inbox is full: try again later",
      );
    }
  }
  if (answer === undefined) {
    return problem(
      502,
      "service_unreachable",
      timedOut
        ? "the service did not answer in time"
        : "the service is unreachable",
    );
  }
  const out = new Headers();
  for (const [name, value] of answer.headers) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.append(name, value);
  }
  return new Response(answer.body, { status: answer.status, headers: out });
}

// On Supabase the runtime picks the port; locally (tests, `deno run`) PORT does.
export function serveRelay(options: RelayOptions = {}): void {
  const handler = (request: Request) => relay(request, options);
  const port = Deno.env.get("PORT");
  if (port) {
    Deno.serve({
      port: Number(port),
      hostname: "127.0.0.1",
      onListen: () => {},
    }, handler);
  } else Deno.serve(handler);
}
