// Cursor pagination for admin lists: `?limit=&cursor=` in, `{ items, nextCursor }` out. The cursor is
// opaque (base64url JSON of the last row's sort key) so clients never build one, and keyset paging
// stays O(limit) however deep a client pages (no OFFSET scans over 100,000 rows).
import { z } from "@hono/zod-openapi";
import { Problem } from "./problem";

export const MAX_PAGE = 200;

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50).openapi({ type: "integer", example: 50 }),
  cursor: z.string().max(1024).optional().openapi({ description: "The nextCursor of the previous page" }),
};

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export function encodeCursor(key: unknown): string {
  let s = "";
  for (const b of new TextEncoder().encode(JSON.stringify(key))) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The sort key inside a cursor, checked against `schema`; a cursor this API did not issue is a 400. */
export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | null {
  if (cursor === undefined) return null;
  try {
    const bin = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const parsed = schema.safeParse(
      JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0)))),
    );
    if (parsed.success) return parsed.data;
  } catch {
    /* fall through */
  }
  throw new Problem("validation", "The cursor is not one this API issued.", {
    errors: [{ path: "query.cursor", message: "invalid cursor" }],
  });
}

/** Rows were fetched with LIMIT limit + 1: the extra row only says that another page exists. */
export function page<R, I>(
  rows: R[],
  limit: number,
  keyOf: (row: R) => unknown,
  map: (row: R) => I,
): { items: I[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown.at(-1);
  return { items: shown.map(map), nextCursor: more && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
