// Where a webhook may not be sent: hosts that name this machine or a private network (an SSRF filter
// for endpoint URLs in staging and production). Pure, on the URL as WHATWG parses it, so 2130706433,
// 0x7f.1 and [::ffff:7f00:1] are all seen as 127.0.0.1. A public name that resolves to a private
// address is not caught here (a Worker cannot resolve names); Workers' fetch does not reach private
// networks in any case.

/** Why `url` may not receive webhooks (null: it may). */
export function privateDestination(url: URL): string | null {
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (url.username || url.password) return "must not carry credentials";
  if (host === "localhost" || /\.(localhost|local|internal|home\.arpa)$/.test(host)) return "names a local host";
  const v4 = ipv4(host) ?? mappedIpv4(host);
  if (v4) return privateIpv4(v4) ? "is a private, loopback or reserved address" : null;
  if (host.startsWith("[")) return privateIpv6(host.slice(1, -1)) ? "is a private, loopback or reserved address" : null;
  return null;
}

function ipv4(host: string): number[] | null {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const n = parts.map(Number);
  return n.every((x) => x <= 255) ? n : null;
}

/** ::ffff:a.b.c.d (written by the URL parser as [::ffff:hhhh:hhhh]). */
function mappedIpv4(host: string): number[] | null {
  const m = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
  if (!m) return null;
  const hi = Number.parseInt(m[1] as string, 16);
  const lo = Number.parseInt(m[2] as string, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255];
}

function privateIpv4([a, b]: number[]): boolean {
  if (a === undefined || b === undefined) return true;
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

function privateIpv6(addr: string): boolean {
  if (addr === "::" || addr === "::1") return true;
  const first = Number.parseInt(addr.split(":")[0] || "0", 16);
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00;
}
