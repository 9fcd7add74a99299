// Terminal output of scripts/catalog.mjs. Pure (strings in, strings out), so tests can import it.

/** The PUT /admin/v1/catalog answer as one short paragraph. */
export function formatApplyResult(result, { file, target }) {
  const a = result?.applied ?? {};
  const counts = [
    `${a.features ?? 0} features`,
    `${a.plans ?? 0} plans`,
    `${a.regionGroups ?? 0} region groups`,
    `${a.prices ?? 0} price mappings`,
  ];
  const head = `Applied ${file} to ${target}: ${counts.join(", ")}.`;
  // One catalog revision, no customer recompiled: checks see it within the catalog cache's TTL.
  if (result?.version === undefined) return head;
  return `${head} Catalog revision ${result.catalogRev} (minVersion "${result.version}"); checks everywhere see it within CATALOG_CACHE_TTL_MS of KV having it.`;
}

const OP_MARK = { added: "+", changed: "~", removed: "-", kept: "=" };
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The POST /admin/v1/catalog/diff answer: who is affected first, then every change. */
export function formatDiff(diff, { file, target }) {
  const s = diff.summary;
  const lines = [`Catalog diff: ${file} -> ${target}`];
  lines.push(
    `  ${s.added} added, ${s.changed} changed, ${s.removed} removed, ${s.kept} kept (in D1, not in the file: apply never deletes)`,
  );
  if (diff.changes.every((c) => c.op === "kept")) {
    lines.push("", "Nothing to apply.");
    return lines.join("\n");
  }
  if (diff.impact.length > 0) {
    const verb = (n, v) => `${plural(n, "customer")} ${v}${n === 1 ? "s" : ""}`;
    lines.push(
      "",
      `Who is affected (${verb(s.customersLosing, "lose")} something, ${verb(s.customersGaining, "gain")} something):`,
    );
    for (const i of diff.impact) {
      const who =
        i.customers === 0
          ? "no customers"
          : `${plural(i.customers, "customer")}${i.examples.length ? ` (e.g. ${i.examples.join(", ")})` : ""}`;
      lines.push(`  ${i.effect.toUpperCase().padEnd(6)} ${i.feature}: ${who}${i.destructive ? "  [destructive]" : ""}`);
      for (const d of i.details) lines.push(`           ${d}`);
    }
  }
  lines.push("", "Changes:");
  for (const c of diff.changes) {
    const details = c.details.length ? `: ${c.details.join("; ")}` : "";
    const reach = c.customers > 0 ? ` (${plural(c.customers, "customer")})` : "";
    lines.push(`  ${OP_MARK[c.op] ?? "?"} ${c.kind} ${c.id}${details}${reach}`);
  }
  const refusal = destructiveRefusal(diff);
  if (refusal) lines.push("", refusal);
  return lines.join("\n");
}

/** Why `apply` refuses this diff, or null when it may go ahead without --allow-destructive. */
export function destructiveRefusal(diff) {
  if (!diff.destructive) return null;
  const losses = diff.impact.filter((i) => i.destructive);
  const what = losses.map((i) => `${i.feature} (${plural(i.customers, "customer")})`).join(", ");
  return `Destructive: customers would lose ${what}. Review the diff, then apply with --allow-destructive.`;
}
