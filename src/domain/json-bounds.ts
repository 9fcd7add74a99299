// Bounds on what an admin body may nest, checked before any schema reads it. The schemas validate a
// config value (an entitlement's `value`, any JSON) recursively, so a value a few thousand levels deep
// overflows the stack; everything here walks with an explicit stack instead, and never recurses. Pure.

/** A config value: at most this many levels of arrays and objects (a scalar is 0, `[1]` is 1). */
export const MAX_CONFIG_DEPTH = 32;
/** A config value: at most this many bytes as JSON (UTF-8). */
export const MAX_CONFIG_BYTES = 16 * 1024;
/** Anything else in an admin body: at most this many levels (a catalog file needs 6 around its values). */
export const MAX_BODY_DEPTH = 64;

export interface BoundError {
  path: string;
  message: string;
}

type Node = { value: unknown; path: string; depth: number };
/** A node of the body walk: its key in its parent, and the member of the body it is inside (for errors). */
type BodyNode = Node & { key: string | null; top: string };

const isContainer = (v: unknown): v is object => v !== null && typeof v === "object";

function children(node: Node): Node[] {
  const v = node.value as Record<string, unknown> | unknown[];
  const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  return entries.map(([k, x]) => ({ value: x, path: `${node.path}.${k}`, depth: node.depth + 1 }));
}

/** How deep `value` nests, counted up to `limit + 1` (the walk stops there). */
export function nestingDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: Node[] = [{ value, path: "", depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (!isContainer(node.value)) continue;
    const depth = node.depth + 1;
    if (depth > max) max = depth;
    if (depth > limit) return depth;
    for (const child of children(node)) if (isContainer(child.value)) stack.push({ ...child, depth });
  }
  return max;
}

/**
 * Where config values sit in an admin body: the `value` of any object (an entitlement spec), each
 * member of an `entitlements` map that is not an object (the catalog shorthand: `"theme": "dark"`),
 * and a body that is not an object (PUT .../entitlements/{feature} takes the shorthand itself).
 */
function isConfigValue(key: string, parentKey: string | null, value: unknown): boolean {
  return key === "value" || (parentKey === "entitlements" && !isContainer(value));
}

/**
 * Every bound `body` breaks, by path under `root` (`json`): config values deeper than
 * MAX_CONFIG_DEPTH or larger than MAX_CONFIG_BYTES, and anything else nested deeper than
 * MAX_BODY_DEPTH. Walks with an explicit stack; config values are measured on their own.
 */
export function boundErrors(body: unknown, root = "json"): BoundError[] {
  const errors: BoundError[] = [];
  const configs: { value: unknown; path: string }[] = [];
  if (!isContainer(body)) configs.push({ value: body, path: root });
  const stack: BodyNode[] = isContainer(body) ? [{ value: body, path: root, depth: 0, key: null, top: root }] : [];
  while (stack.length > 0) {
    const node = stack.pop() as BodyNode;
    const depth = node.depth + 1;
    if (depth > MAX_BODY_DEPTH) {
      errors.push({
        path: node.top,
        message: `nested deeper than ${MAX_BODY_DEPTH} levels (the limit of an admin body)`,
      });
      continue;
    }
    const parentKey = Array.isArray(node.value) ? null : node.key;
    for (const child of children(node)) {
      const key = child.path.slice(node.path.length + 1);
      const top = node.depth === 0 ? child.path : node.top;
      if (!Array.isArray(node.value) && isConfigValue(key, parentKey, child.value)) configs.push(child);
      else if (isContainer(child.value)) stack.push({ ...child, depth, key, top });
    }
  }
  for (const { value, path } of configs) {
    if (nestingDepth(value, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH)
      errors.push({ path, message: `nested deeper than ${MAX_CONFIG_DEPTH} levels (the limit of a config value)` });
    else if (value !== undefined && utf8Length(JSON.stringify(value)) > MAX_CONFIG_BYTES)
      errors.push({ path, message: `larger than ${MAX_CONFIG_BYTES} bytes as JSON (the limit of a config value)` });
  }
  return errors;
}

const utf8Length = (s: string) => new TextEncoder().encode(s).length;
