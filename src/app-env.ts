// The Hono context type shared by every sub-app: the bindings plus what the app's middleware sets.
import type { Principal } from "./auth/principal";
import type { Env } from "./env";
import type { Services } from "./services";

export interface AppVariables {
  requestId: string;
  principal: Principal;
  services: Services;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}
