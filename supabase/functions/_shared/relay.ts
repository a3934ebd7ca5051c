// The one relay every Edge Function of Trove is: the request goes on to the Python service, which is the one
// implementation (no platform logic here). Method, path, query and the raw body byte for byte (webhook
// signatures are over the exact bytes), the headers that matter (hop-by-hop ones dropped), and
// TROVE_RELAY_SECRET in X-Trove-Relay-Secret; the service's answer comes back as it is (redirects included:
// OAuth callbacks answer with one). TROVE_SERVICE_URL says where the service is. A function relays only its
// own URLs: /functions/v1/<name>[/...] to the service's same path (`api`: /functions/v1/api/... to /api/...).
//
// A webhook function relays with `{ inbox: true }`: when the service cannot be reached in time (it is down,
// or slower than the platform's deadline: Strava gives 2 s), the delivery is kept in the inbox (inbox.ts)
// and the platform gets its 200; the worker checks and processes it later. An answer the service itself
// gave (X-Trove-Service) is never second-guessed, whatever its status.
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

// A setting in milliseconds; a value that is not a positive number is a mistake: the default, said once.
function milliseconds(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value <= 0) {
    console.error(
      `${name}=${JSON.stringify(raw)} is not milliseconds: using ${fallback}`,
    );
    return fallback;
  }
  return value;
}

const TIMEOUT_MS = milliseconds("TROVE_RELAY_TIMEOUT_MS", 10000);
// A webhook must be answered within the platform's deadline, keeping it in the inbox included.
const WEBHOOK_TIMEOUT_MS = milliseconds("TROVE_RELAY_WEBHOOK_TIMEOUT_MS", 1500);
// Answers that mean the service is not there (a proxy or load balancer in front of it says so).
const AWAY = new Set([502, 503, 504]);
// What the service takes of any body but an export file; of a webhook, what it takes of an event.
const MAX_BODY = 1024 * 1024;
const MAX_WEBHOOK_BODY = 64 * 1024;

export type RelayOptions = {
  // Keep a webhook delivery the service cannot take in time (see above).
  inbox?: boolean;
};

function problem(status: number, error: string, detail: string): Response {
  return new Response(JSON.stringify({ error, detail }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

// The body, read no further than `limit` bytes (null past it): a huge upload never sits in memory.
async function readCapped(
  request: Request,
  limit: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) return null;
  const body = new Uint8Array(new ArrayBuffer(0));
  if (!request.body) return body;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const whole = new Uint8Array(new ArrayBuffer(size));
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return whole;
}

export async function relay(
  name: string,
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
  // Supabase hands a function its path with or without the /functions/v1 prefix.
  const path = incoming.pathname.replace(/^\/functions\/v1(?=\/)/, "");
  if (path !== `/${name}` && !path.startsWith(`/${name}/`)) {
    return problem(404, "not_found", `this function relays /${name} only`);
  }
  if (name === "api" && !/^\/api\/[^/]/.test(path)) {
    return problem(404, "not_found", "this function relays /api/... only");
  }
  const servicePath = name === "api" ? path : `/functions/v1${path}`;
  const target = `${
    service.replace(/\/+$/, "")
  }${servicePath}${incoming.search}`;
  const headers = new Headers();
  for (const [header, value] of request.headers) {
    if (!HOP_BY_HOP.has(header.toLowerCase())) headers.set(header, value);
  }
  headers.set("x-trove-relay-secret", Deno.env.get("TROVE_RELAY_SECRET") ?? "");
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (request.method !== "GET" && request.method !== "HEAD") {
    const limit = options.inbox ? MAX_WEBHOOK_BODY : MAX_BODY;
    const read = await readCapped(request, limit);
    if (read === null) {
      return problem(413, "too_large", `the body is over ${limit} bytes`);
    }
    body = read;
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
  const away = answer === undefined ||
    (AWAY.has(answer.status) && !answer.headers.has("x-trove-service"));
  if (inbox && away) {
    await answer?.body?.cancel();
    answer = undefined;
    const kept = await keep(
      path.slice(1),
      incoming.search.replace(/^\?/, ""),
      request.headers,
      body!,
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
    if (kept === "refused") {
      return problem(
        400,
        "not_kept",
        "the service is away and this request is not one its inbox keeps",
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
  for (const [header, value] of answer.headers) {
    if (!HOP_BY_HOP.has(header.toLowerCase())) out.append(header, value);
  }
  return new Response(answer.body, { status: answer.status, headers: out });
}

// On Supabase the runtime picks the port; locally (tests, `deno run`) PORT does. `name` is the function's
// (its folder's) name: the URLs it relays.
export function serveRelay(name: string, options: RelayOptions = {}): void {
  const handler = (request: Request) => relay(name, request, options);
  const port = Deno.env.get("PORT");
  if (port) {
    Deno.serve({
      port: Number(port),
      hostname: "127.0.0.1",
      onListen: () => {},
    }, handler);
  } else Deno.serve(handler);
}
