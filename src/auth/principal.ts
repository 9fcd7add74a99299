// Who is calling: an API key (automation, checks, usage), an operator (a person, via JWT), or the
// bootstrap admin key (first deploy, local development).
import type { Scope } from "../domain/types";

import type { OperatorRole } from "./operator-jwt";

export type { OperatorRole };

export type Principal =
  | { kind: "api_key"; id: string; scopes: Scope[]; customerId: string | null }
  | { kind: "operator"; id: string; email?: string; role: OperatorRole }
  | { kind: "bootstrap"; id: "bootstrap" };

/** The actor recorded in the audit log. */
export function actorOf(p: Principal): { actor: string; actorType: string } {
  if (p.kind === "api_key") return { actor: `key:${p.id}`, actorType: "api_key" };
  if (p.kind === "operator") return { actor: p.email ? `${p.id} <${p.email}>` : p.id, actorType: "operator" };
  return { actor: "bootstrap", actorType: "bootstrap" };
}
