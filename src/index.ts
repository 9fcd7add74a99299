import { DurableObject } from "cloudflare:workers";
export default { fetch: () => Response.json({ ok: true }) };
export class CustomerMeter extends DurableObject { async ping() { return 1; } }
