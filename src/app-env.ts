// The Hono context type shared by every sub-app: the bindings plus what the app's middleware sets.
import type { OperatorRole, Principal } from "./auth/principal";
import type { Env } from "./env";
import type { Services } from "./services";

export interface AppVariables {
  requestId: string;
  principal: Principal;
  services: Services;
  /** This app's own fetch, for the console's in-process calls to the admin API (src/ui/admin-call.ts). */
  innerFetch: (request: Request) => Promise<Response>;
  /** The console's signed-in person (src/ui/session.ts); `sid` is what its CSRF tokens are bound to. */
  consoleSession: { sub: string; email?: string; role: OperatorRole; sid: string };
  /** The CSRF token of this session, for the forms a console page renders. */
  csrfToken: string;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}
