// The webhook inbox: a delivery the service could not take in time is kept in public.webhook_inbox (through
// trove_private.webhook_inbox_put, over SUPABASE_DB_URL, which Supabase gives every function) so the
// platform gets its 200 within its deadline and nothing is lost. Nothing is checked here: the worker runs
// each kept delivery through the service's own checks (signature, secret URL, subscription) before any of
// it is believed.
import postgres from "npm:postgres@3.4.9";

// Kept: only what a delivery's checks may need (its media type and encoding, who sent it, WebSub's
// X-Hub-* and any *-signature* header); never credentials, forwarding chains or the relay's own secret.
const KEPT =
  /^(content-type|content-encoding|user-agent|x-hub-[a-z0-9-]+|[a-z0-9-]*signature[a-z0-9-]*)$/;
const MAX_HEADER_VALUE = 1024;

let sql: ReturnType<typeof postgres> | undefined;

function database(): ReturnType<typeof postgres> | undefined {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) return undefined;
  // One connection per function instance; prepare: false works through Supabase's transaction pooler.
  sql ??= postgres(url, {
    max: 1,
    prepare: false,
    connect_timeout: 3,
    idle_timeout: 30,
    onnotice: () => {},
  });
  return sql;
}

export type Kept = "kept" | "full" | "refused" | "unavailable";

// Keep one delivery: the path under /functions/v1 (webhook-<platform>[/<secret>]), its query string, the
// headers that matter (KEPT) and the raw body.
export async function keep(
  path: string,
  query: string,
  headers: Headers,
  body: Uint8Array,
): Promise<Kept> {
  const db = database();
  if (!db) return "unavailable";
  const kept: Record<string, string> = {};
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    if (!KEPT.test(key)) continue;
    if (value.length <= MAX_HEADER_VALUE) kept[key] = value;
  }
  try {
    await db`select trove_private.webhook_inbox_put(
      ${path}, ${query}, ${db.json(kept)}, decode(${
      encodeBase64(body)
    }, 'base64'))`;
    return "kept";
  } catch (error) {
    const code = (error as { code?: string }).code;
    console.error(`webhook inbox: ${code ?? ""} ${(error as Error).message}`);
    // 53400: the inbox is full; 23514: not a webhook delivery the inbox takes (path, size).
    return code === "53400"
      ? "full"
      : code === "23514"
      ? "refused"
      : "unavailable";
  }
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
