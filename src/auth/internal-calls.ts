// The console (src/ui/console) is a client of the admin API inside the worker: each of its actions is
// a request to the very route the API serves, so the role check, validation, four eyes, the write path
// and the audit are the API's own, never a copy. Such a request carries the signed-in person as the
// principal. It is handed over in a map under a random one-time name that travels in a header: a
// request from outside cannot name a live entry (122 random bits, alive for one in-process call).
import type { Principal } from "./principal";

export const INTERNAL_CALL_HEADER = "X-Tollgate-Internal-Call";

const pending = new Map<string, Principal>();

/** Runs `call` with `principal` registered under a fresh name; the name is forgotten when it settles. */
export async function withInternalPrincipal<T>(principal: Principal, call: (name: string) => Promise<T>): Promise<T> {
  const name = crypto.randomUUID();
  pending.set(name, principal);
  try {
    return await call(name);
  } finally {
    pending.delete(name);
  }
}

/** The principal of an in-process call, or null for any other request. */
export function internalPrincipal(headers: Headers): Principal | null {
  const name = headers.get(INTERNAL_CALL_HEADER);
  return name === null ? null : (pending.get(name) ?? null);
}
