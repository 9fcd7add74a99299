import { env, exports } from "cloudflare:workers";
import { it, expect } from "vitest";
it("works", async () => {
  const r = await exports.default.fetch("http://x/");
  expect(await r.json()).toEqual({ ok: true });
  expect((await env.DB.prepare("select count(*) n from features").first())?.n).toBe(0);
});
