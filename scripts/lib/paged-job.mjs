// Drives a paged admin operation (POST /admin/v1/snapshots/{verify,rebuild}) to the end: one page per
// request, the cursor saved after every page (so an interrupted run resumes where it stopped), an
// optional request-rate cap, and running totals. Pure: the HTTP client, the clock and the state store
// are passed in, so the tests drive it against the worker in workerd.

/** A fresh run's state; a saved one (from the cursor file) is passed back in to resume. */
export function newJobState(kind, target, extra = {}) {
  return {
    kind,
    target,
    cursor: null,
    done: false,
    total: null,
    pages: 0,
    processed: 0,
    changed: 0,
    rewritten: 0,
    byKind: {},
    examples: [],
    ...extra,
  };
}

/**
 * @param {object} o
 * @param {(method: string, path: string, body: unknown) => Promise<any>} o.request  the admin client
 * @param {string} o.path                      e.g. /admin/v1/snapshots/rebuild
 * @param {object} o.body                      fixed part of every page request (limit, force, customerId...)
 * @param {object} o.state                     newJobState(...) or a saved state
 * @param {(state: object) => Promise<void> | void} [o.save]   persist the state after each page
 * @param {(state: object, page: object) => void} [o.onPage]  progress reporting
 * @param {number} [o.maxRps]                  at most this many page requests per second
 * @param {number} [o.maxExamples]             drifted customers kept for the final report
 * @param {() => number} [o.now]
 * @param {(ms: number) => Promise<void>} [o.sleep]
 */
export async function runPagedJob(o) {
  const state = o.state;
  const now = o.now ?? (() => Date.now());
  const sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const minGapMs = o.maxRps ? 1000 / o.maxRps : 0;
  const maxExamples = o.maxExamples ?? 50;
  let last = -Infinity;
  while (!state.done) {
    const wait = last + minGapMs - now();
    if (wait > 0) await sleep(wait);
    last = now();
    const page = await o.request("POST", o.path, { ...o.body, ...(state.cursor ? { cursor: state.cursor } : {}) });
    state.pages += 1;
    state.processed += page.processed;
    state.changed += page.changed ?? 0;
    state.rewritten += page.rewritten ?? 0;
    if (typeof page.total === "number" && state.total === null) state.total = page.total;
    // The first page also compares the shared catalog (pointer and object) with D1.
    if (page.catalog) state.catalog = page.catalog;
    for (const d of page.drift ?? []) {
      state.byKind[d.kind] = (state.byKind[d.kind] ?? 0) + 1;
      if (state.examples.length < maxExamples) state.examples.push(d);
    }
    state.cursor = page.nextCursor;
    state.done = !page.nextCursor;
    await o.save?.(state);
    o.onPage?.(state, page);
  }
  return state;
}

/** `[=========>          ] 1,200/5,000  24%  changed 3` (total unknown: a count only). */
export function renderProgress(state, width = 30) {
  const n = (x) => x.toLocaleString("en-US");
  const counts = state.kind === "verify" ? `drift ${n(sum(state.byKind))}` : `changed ${n(state.changed)}`;
  if (!state.total) return `${n(state.processed)} customers  ${counts}`;
  const ratio = Math.min(1, state.processed / state.total);
  const filled = Math.round(ratio * width);
  const bar = filled >= width ? "=".repeat(width) : `${"=".repeat(filled)}>${" ".repeat(width - filled - 1)}`;
  return `[${bar}] ${n(state.processed)}/${n(state.total)} ${String(Math.floor(ratio * 100)).padStart(3)}%  ${counts}`;
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

/** Whether the run found the shared catalog out of step with D1 (verify exits 4 then, as for customers). */
export const catalogDrifted = (state) => Boolean(state.catalog && state.catalog.kind !== null);

function catalogLine(catalog, kind) {
  if (!catalog) return [];
  if (catalog.kind === null) return [`Catalog: in step (revision ${catalog.freshRev}).`];
  const kv = catalog.kvRev === null ? "no pointer" : `KV names revision ${catalog.kvRev}`;
  return [`Catalog: ${catalog.kind} (${kv}, D1 has ${catalog.freshRev})${kind === "rebuild" ? "; republished." : "."}`];
}

/** The final report of a run. */
export function formatJobSummary(state) {
  const n = (x) => x.toLocaleString("en-US");
  const kinds = Object.entries(state.byKind)
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(", ");
  const lines =
    state.kind === "verify"
      ? [
          `Verified ${n(state.processed)} snapshots: ${sum(state.byKind) === 0 ? "no drift." : `${n(sum(state.byKind))} drifted (${kinds}).`}`,
          ...catalogLine(state.catalog, "verify"),
        ]
      : [
          `Rebuilt ${n(state.processed)} snapshots: ${n(state.changed)} changed${kinds ? ` (${kinds})` : ""}, ${n(state.processed - state.changed)} already right; ${n(state.rewritten)} KV writes.`,
          ...catalogLine(state.catalog, "rebuild"),
        ];
  for (const d of state.examples) {
    const versions = d.kvVersion === null ? `fresh v${d.freshVersion}` : `KV v${d.kvVersion}, fresh v${d.freshVersion}`;
    lines.push(
      `  ${d.kind.padEnd(10)} ${d.customerId} (${versions})${d.fields.length ? `: ${d.fields.slice(0, 6).join(", ")}${d.fields.length > 6 ? ", ..." : ""}` : ""}`,
    );
  }
  const listed = state.examples.length;
  if (sum(state.byKind) > listed) lines.push(`  ... and ${n(sum(state.byKind) - listed)} more`);
  return lines.join("\n");
}
