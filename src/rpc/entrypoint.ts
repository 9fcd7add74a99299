// The service-binding entrypoint: apps that run on Workers call Tollgate as typed RPC through a
// binding (`[[services]] ... entrypoint = "TollgateRpc"`), with no HTTP parsing and no API-key
// lookup: the binding is the trust, as Cloudflare's own bindings are. A binding may carry
// `props.customerId`, which scopes it to that one customer (like an API key bound to a customer).
//
// Every method validates with the HTTP API's own schemas and runs the same path (check-path.ts,
// usage-path.ts), so decisions and errors are those of the API. Errors do not cross RPC with their
// properties, so a method answers a result object: `{ ok: true, value }`, or `{ ok: false, problem }`
// with the problem+json body the HTTP API would have sent (field paths as in the HTTP body: `json.x`).
import { WorkerEntrypoint } from "cloudflare:workers";
import { z } from "@hono/zod-openapi";
import { type CheckDeps, evaluateAll, evaluateCheck } from "../check-path";
import type { Decision } from "../domain/types";
import { assignSeat, readEntity, releaseSeat, type SeatBody } from "../entity-path";
import type { Env } from "../env";
import { Problem, type ProblemBody, problemBody, toProblem, zodProblem } from "../http/problem";
import { countryParam, customerIdParam, entityIdParam, featureParam, minVersionBody, roleParam } from "../http/schemas";
import { checkBody } from "../routes/check";
import { releaseBody, reserveBody, settleBody, usageBody } from "../routes/usage-spec";
import type { Services } from "../services";
import { closeReservation, consume, reserve, type UsageBody } from "../usage-path";

export type RpcResult<T> = { ok: true; value: T } | { ok: false; problem: ProblemBody };

/** What a calling Worker's binding may set (`[services.props]`). */
export interface RpcProps {
  /** Scope the binding to this customer: calls for any other are refused (403), and `customerId` may be left out. */
  customerId?: string;
}

const rpcCheck = checkBody.omit({ assert: true, assertAudience: true });
const rpcEntitlements = z
  .object({
    customerId: customerIdParam,
    role: roleParam.optional(),
    country: countryParam.optional(),
    minVersion: minVersionBody.optional(),
    entityId: entityIdParam.optional(),
  })
  .strict();
/** A seat of a seats feature for a named entity (POST /v1/entities/{customerId}/{entityId}/assign's path and body). */
const rpcSeat = z
  .object({
    customerId: customerIdParam,
    entityId: entityIdParam,
    feature: featureParam,
    minVersion: minVersionBody.optional(),
  })
  .strict();
const rpcEntity = rpcSeat.omit({ feature: true });

export type RpcCheckInput = z.input<typeof rpcCheck>;
export type RpcEntitlementsInput = z.input<typeof rpcEntitlements>;
export type RpcConsumeInput = z.input<typeof usageBody>;
export type RpcReserveInput = z.input<typeof reserveBody>;
export type RpcSettleInput = z.input<typeof settleBody>;
export type RpcReleaseInput = z.input<typeof releaseBody>;
export type RpcSeatInput = z.input<typeof rpcSeat>;
export type RpcEntityInput = z.input<typeof rpcEntity>;
export type EntityBody = Awaited<ReturnType<typeof readEntity>>;
export type Entitlements = Awaited<ReturnType<typeof evaluateAll>>;

/** The entrypoint class, over the worker's per-isolate services (index.ts exports it as TollgateRpc). */
export function rpcEntrypoint(getServices: (env: Env) => Services) {
  return class TollgateRpc extends WorkerEntrypoint<Env, RpcProps> {
    /** POST /v1/check: may this customer use this feature, here and now? A denial is ok with allowed: false. */
    check(input: RpcCheckInput): Promise<RpcResult<Decision>> {
      return this.#call("check", rpcCheck, input, (deps, body) => evaluateCheck(deps, body));
    }

    /** GET /v1/entitlements/{customerId}: every feature of the customer, evaluated in one context. */
    entitlements(input: RpcEntitlementsInput): Promise<RpcResult<Entitlements>> {
      return this.#call("entitlements", rpcEntitlements, input, (deps, body) => evaluateAll(deps, body));
    }

    /** POST /v1/usage: consume (atomic check-and-increment) or record usage. */
    consume(input: RpcConsumeInput): Promise<RpcResult<UsageBody>> {
      return this.#call("consume", usageBody, input, (deps, body) =>
        consume(deps, { ...body, idempotencyKey: body.idempotencyKey ?? null }),
      );
    }

    /** POST /v1/usage/reserve: hold units for work whose cost is known later. */
    reserve(input: RpcReserveInput): Promise<RpcResult<UsageBody>> {
      return this.#call("reserve", reserveBody, input, (deps, body) =>
        reserve(deps, { ...body, idempotencyKey: body.idempotencyKey ?? null }),
      );
    }

    /** POST /v1/usage/settle: charge the actual amount of a reservation and free the rest. */
    settle(input: RpcSettleInput): Promise<RpcResult<UsageBody>> {
      return this.#call("settle", settleBody, input, (deps, body) => closeReservation(deps, "settle", body));
    }

    /** POST /v1/usage/release: free a reservation without charging. */
    release(input: RpcReleaseInput): Promise<RpcResult<UsageBody>> {
      return this.#call("release", releaseBody, input, (deps, body) => closeReservation(deps, "release", body));
    }

    /** POST /v1/entities/{customerId}/{entityId}/assign: a seat of a seats feature for the entity, if one is free. */
    assignSeat(input: RpcSeatInput): Promise<RpcResult<SeatBody>> {
      return this.#call("assignSeat", rpcSeat, input, (deps, body) => assignSeat(deps, body));
    }

    /** POST /v1/entities/{customerId}/{entityId}/release: frees the entity's seat. */
    releaseSeat(input: RpcSeatInput): Promise<RpcResult<SeatBody>> {
      return this.#call("releaseSeat", rpcSeat, input, (deps, body) => releaseSeat(deps, body));
    }

    /** GET /v1/entities/{customerId}/{entityId}: the seats the entity holds and its per-entity usage. */
    entity(input: RpcEntityInput): Promise<RpcResult<EntityBody>> {
      return this.#call("entity", rpcEntity, input, (deps, b) =>
        readEntity(deps, b.customerId, b.entityId, b.minVersion),
      );
    }

    /** Validate (the binding's customer filled in and enforced), run, and turn any throw into a problem body. */
    async #call<S extends z.ZodType<{ customerId: string }>, T>(
      method: string,
      schema: S,
      input: unknown,
      run: (deps: CheckDeps, body: z.output<S>) => Promise<T>,
    ): Promise<RpcResult<T>> {
      const instance = `rpc:${method}`;
      try {
        const scope = this.ctx.props?.customerId;
        const given: { customerId?: unknown } = typeof input === "object" && input !== null ? input : {};
        if (scope !== undefined && given.customerId !== undefined && given.customerId !== scope)
          throw new Problem("forbidden", "This binding is scoped to another customer.");
        const parsed = schema.safeParse(scope !== undefined ? { customerId: scope, ...given } : input);
        if (!parsed.success) throw zodProblem(parsed.error, "json");
        const deps: CheckDeps = {
          env: this.env,
          services: getServices(this.env),
          waitUntil: (p) => this.ctx.waitUntil(p),
        };
        return { ok: true, value: await run(deps, parsed.data) };
      } catch (err) {
        const p = toProblem(err);
        if (p.slug === "internal")
          console.error(JSON.stringify({ msg: "rpc failed", method, error: err instanceof Error ? err.stack : err }));
        return { ok: false, problem: problemBody(p, instance) };
      }
    }
  };
}

/** The entrypoint's type, for a calling Worker's Env: `TOLLGATE: Service<TollgateRpcEntrypoint>`. */
export type TollgateRpcEntrypoint = InstanceType<ReturnType<typeof rpcEntrypoint>>;
