// The documentation conventions of `npm run docs:check` (CONTRIBUTING.md, "Documentation"): fenced
// blocks and their markers, GitHub heading anchors, relative links (the one function that reads files),
// and the comparison of a block's output with the documented one ("…" stands for what varies).
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

const ANY = "…";

// ---------------------------------------------------------------------------------------------
// Markdown: fenced blocks with their markers, headings, links.

/** Fenced blocks in order: { lang, code, line, skip?: reason, output?: { lang, code, line } }. */
export function parseBlocks(text) {
  const lines = text.split("\n");
  const fences = [];
  let marker = null; // the last <!-- ... --> comment, if only blank lines followed it
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (open) {
      const [, indent, fence, lang] = open;
      const body = [];
      let j = i + 1;
      while (j < lines.length && !lines[j].trimStart().startsWith(fence)) body.push(lines[j++].slice(indent.length));
      fences.push({ lang: lang.toLowerCase(), code: body.join("\n"), line: i + 1, end: j + 1, marker });
      marker = null;
      i = j;
      continue;
    }
    const comment = /^\s*<!--\s*(docs:skip|output)\b\s*(.*?)\s*-->\s*$/.exec(line);
    if (comment) marker = { kind: comment[1], reason: comment[2], line: i + 1 };
    else if (line.trim() !== "") marker = null;
  }
  const blocks = [];
  for (let k = 0; k < fences.length; k++) {
    const f = fences[k];
    if (f.marker?.kind === "output") continue; // consumed by the block before it
    if (!["sh", "bash"].includes(f.lang)) continue;
    const block = { lang: f.lang, code: f.code, line: f.line };
    if (f.marker?.kind === "docs:skip") block.skip = f.marker.reason || "no reason given";
    const next = fences[k + 1];
    if (next?.marker?.kind === "output" && next.marker.line > f.end)
      block.output = { lang: next.lang, code: next.code, line: next.line };
    blocks.push(block);
  }
  // An output marker that no shell block precedes is a mistake in the docs.
  const orphans = fences
    .filter((f, k) => f.marker?.kind === "output" && !["sh", "bash"].includes(fences[k - 1]?.lang))
    .map((f) => f.line);
  return { blocks, orphans };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function anchorsOf(text) {
  const anchors = new Set();
  const seen = new Map();
  let inFence = false;
  for (const line of text.split("\n")) {
    if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = h[1]
      .replace(/<[^>]+>/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Every relative link of `files` (paths under `root`) that does not resolve, anchors included. */
export function checkLinks(root, files) {
  const broken = [];
  const anchorCache = new Map();
  const anchorsIn = (abs) => {
    if (!anchorCache.has(abs)) anchorCache.set(abs, anchorsOf(readFileSync(abs, "utf8")));
    return anchorCache.get(abs);
  };
  let count = 0;
  for (const file of files) {
    const abs = resolve(root, file);
    const text = readFileSync(abs, "utf8");
    let inFence = false;
    text.split("\n").forEach((line, i) => {
      if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence;
      if (inFence) return;
      const plain = line.replace(/`[^`]*`/g, "");
      for (const m of plain.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        count++;
        const [path, anchor] = target.split("#");
        const dest = path ? resolve(dirname(abs), decodeURI(path)) : abs;
        const where = `${file}:${i + 1}`;
        if (!existsSync(dest)) broken.push(`${where}: ${target} (no such file)`);
        else if (anchor !== undefined && dest.endsWith(".md") && !anchorsIn(dest).has(anchor))
          broken.push(`${where}: ${target} (no heading #${anchor} in ${relative(root, dest)})`);
      }
    });
  }
  return { count, broken };
}

// Output comparison.

/** Splits text into consecutive JSON values (pretty-printed or one per line). */
export function parseJsonStream(text) {
  const values = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (i >= text.length) break;
    let j = i;
    if (text[i] === "{" || text[i] === "[") {
      let depth = 0;
      let inString = false;
      for (; j < text.length; j++) {
        const ch = text[j];
        if (inString) {
          if (ch === "\\") j++;
          else if (ch === '"') inString = false;
        } else if (ch === '"') inString = true;
        else if (ch === "{" || ch === "[") depth++;
        else if (ch === "}" || ch === "]") {
          depth--;
          if (depth === 0) break;
        }
      }
      j++;
    } else if (text[i] === '"') {
      for (j = i + 1; j < text.length && text[j] !== '"'; j++) if (text[j] === "\\") j++;
      j++;
    } else {
      while (j < text.length && !/\s/.test(text[j])) j++;
    }
    values.push(JSON.parse(text.slice(i, j)));
    i = j;
  }
  return values;
}

/**
 * Structural match of documented JSON against real JSON; returns a list of differences.
 * "…" matches any value; "abc…" any string starting with "abc"; an object entry "…": "…" allows
 * keys not listed; an array ending in "…" allows further elements. Everything else is exact.
 */
export function matchJson(expected, actual, path = "$") {
  if (expected === ANY) return [];
  if (typeof expected === "string" && expected.endsWith(ANY)) {
    const prefix = expected.slice(0, -ANY.length);
    return typeof actual === "string" && actual.startsWith(prefix)
      ? []
      : [`${path}: expected a string starting with ${JSON.stringify(prefix)}, got ${show(actual)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${show(actual)}`];
    const open = expected.at(-1) === ANY;
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length)
      return [`${path}: expected ${open ? "at least " : ""}${items.length} element(s), got ${actual.length}`];
    return items.flatMap((e, k) => matchJson(e, actual[k], `${path}[${k}]`));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual))
      return [`${path}: expected an object, got ${show(actual)}`];
    const open = Object.hasOwn(expected, ANY);
    const diffs = [];
    for (const key of Object.keys(expected)) {
      if (key === ANY) continue;
      if (!Object.hasOwn(actual, key)) diffs.push(`${path}.${key}: missing`);
      else diffs.push(...matchJson(expected[key], actual[key], `${path}.${key}`));
    }
    if (!open)
      for (const key of Object.keys(actual))
        if (!Object.hasOwn(expected, key)) diffs.push(`${path}.${key}: not documented (value ${show(actual[key])})`);
    return diffs;
  }
  return Object.is(expected, actual) ? [] : [`${path}: expected ${show(expected)}, got ${show(actual)}`];
}

const show = (v) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

/** Text match, line by line: "…" inside a line matches any characters; a line that is only "…" any lines. */
export function matchText(expected, actual) {
  const clean = (t) =>
    t
      .replace(/\r/g, "")
      .split("\n")
      .map((l) => l.trimEnd());
  const exp = clean(expected);
  const act = clean(actual);
  while (exp.length && exp.at(-1) === "") exp.pop();
  while (act.length && act.at(-1) === "") act.pop();
  const lineRe = exp.map((l) => new RegExp(`^${l.split(ANY).map(escapeRe).join(".*")}$`));
  const memo = new Map();
  const go = (i, j) => {
    const k = `${i},${j}`;
    if (memo.has(k)) return memo.get(k);
    let ok;
    if (i === exp.length) ok = j === act.length;
    else if (exp[i].trim() === ANY) ok = go(i + 1, j) || (j < act.length && go(i, j + 1));
    else ok = j < act.length && lineRe[i].test(act[j]) && go(i + 1, j + 1);
    memo.set(k, ok);
    return ok;
  };
  if (go(0, 0)) return [];
  // Point at the first line that differs, for the report.
  for (let i = 0, j = 0; i < exp.length; i++, j++) {
    if (exp[i].trim() === ANY) break;
    if (j >= act.length || !lineRe[i].test(act[j]))
      return [`line ${i + 1}: expected ${JSON.stringify(exp[i])}, got ${JSON.stringify(act[j] ?? "(end of output)")}`];
  }
  return ["the output does not match the documented lines"];
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Differences between what a block printed and its documented output (`block.output`: { lang, code }). */
export function compareOutput(block, stdout) {
  if (block.output.lang === "json") {
    let expected;
    let actual;
    try {
      expected = parseJsonStream(block.output.code);
    } catch (err) {
      return [`the documented output is not JSON: ${err.message}`];
    }
    try {
      actual = parseJsonStream(stdout);
    } catch (err) {
      return [`the block did not print JSON (${err.message})`];
    }
    if (expected.length !== actual.length)
      return [`expected ${expected.length} JSON value(s), the block printed ${actual.length}`];
    return expected.flatMap((e, k) => matchJson(e, actual[k], expected.length > 1 ? `$${k + 1}` : "$"));
  }
  return matchText(block.output.code, stdout);
}
