// The analytics screen: usage and denial analytics as charts. Its endpoints
// (GET /admin/v1/analytics/...) are being built on another branch; until they land this says so.
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { Notice } from "../layout";
import { consolePage } from "./chrome";

export function analyticsPage(c: Context<AppEnv>) {
  return consolePage(c, {
    title: "Analytics",
    section: "analytics",
    children: (
      <>
        <h1>Analytics</h1>
        <Notice kind="warn">The analytics endpoints are not part of this build yet.</Notice>
      </>
    ),
  });
}
