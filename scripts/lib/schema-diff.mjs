// Compares two D1/SQLite schemas as sqlite_master sees them: used by test/migrations.test.ts (in
// workerd, over two local D1 databases) and by `npm run deploy -- --dry-run` (in Node, node:sqlite).
// Pure: rows in, differences out.

/** Objects that belong to the engine or to the migration bookkeeping, not to Tollgate's schema. */
export function isSchemaObject(name) {
  return !/^(sqlite_|_cf_|d1_migrations$)/.test(name);
}

/**
 * sqlite_master keeps each CREATE statement's text as written (minus IF NOT EXISTS), comments and
 * layout included; two schemas are equal when the statements are equal up to comments, whitespace
 * and case.
 */
export function normalizeSql(sql) {
  return (sql ?? "")
    .replace(/--[^\n]*/g, " ")
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/\s+/g, " ")
    .replace(/\s*([(),;])\s*/g, "$1")
    .replace(/\bif not exists\b\s*/gi, "")
    .trim()
    .toLowerCase();
}

/**
 * @param {{ type: string, name: string, sql: string | null }[]} expected e.g. schema.sql applied
 * @param {{ type: string, name: string, sql: string | null }[]} actual   e.g. the migrations applied in order
 * @returns {{ missing: string[], extra: string[], different: { name: string, expected: string, actual: string }[] }}
 */
export function diffSchemas(expected, actual) {
  const index = (rows) =>
    new Map(rows.filter((r) => isSchemaObject(r.name)).map((r) => [`${r.type} ${r.name}`, normalizeSql(r.sql)]));
  const a = index(expected);
  const b = index(actual);
  const missing = [...a.keys()].filter((k) => !b.has(k)).sort();
  const extra = [...b.keys()].filter((k) => !a.has(k)).sort();
  const different = [...a.keys()]
    .filter((k) => b.has(k) && a.get(k) !== b.get(k))
    .sort()
    .map((name) => ({ name, expected: a.get(name), actual: b.get(name) }));
  return { missing, extra, different };
}

export const schemasEqual = (d) => d.missing.length === 0 && d.extra.length === 0 && d.different.length === 0;

/** A short report of a schema difference, for a test failure or the deploy dry-run. */
export function formatSchemaDiff(d, labels = { expected: "schema.sql", actual: "migrations" }) {
  if (schemasEqual(d)) return `${labels.actual} yield exactly ${labels.expected}`;
  const lines = [`${labels.actual} do not yield ${labels.expected}:`];
  for (const k of d.missing) lines.push(`  - ${k}: in ${labels.expected}, missing from ${labels.actual}`);
  for (const k of d.extra) lines.push(`  + ${k}: in ${labels.actual}, not in ${labels.expected}`);
  for (const x of d.different)
    lines.push(`  ~ ${x.name}:\n      ${labels.expected}: ${x.expected}\n      ${labels.actual}: ${x.actual}`);
  return lines.join("\n");
}

/** Migration files must be NNNN_name.sql, numbered 1, 2, 3... without gaps or repeats. */
export function migrationNumberingProblems(fileNames) {
  const problems = [];
  let expected = 1;
  for (const f of fileNames.filter((f) => f.endsWith(".sql")).sort()) {
    const m = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(f);
    if (!m) {
      problems.push(`${f}: name it NNNN_lowercase_words.sql`);
      continue;
    }
    if (Number(m[1]) !== expected) problems.push(`${f}: expected number ${String(expected).padStart(4, "0")}`);
    expected = Math.max(expected, Number(m[1])) + 1;
  }
  return problems;
}
