import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export class CustomerMeter extends DurableObject<Env> {
  async ping(): Promise<number> {
    return 1;
  }
}
