// /admin/v1: the admin API, one sub-app per resource.
import { newRouter } from "../../http/router";
import { apiKeyRoutes } from "./api-keys";
import { catalogRoutes } from "./catalog";
import { catalogDiffRoutes } from "./catalog-diff";
import { customerRoutes } from "./customers";
import { snapshotRoutes } from "./snapshots";
import { subscriptionRoutes } from "./subscriptions";

export const adminRoutes = newRouter();
adminRoutes.route("/catalog", catalogRoutes);
adminRoutes.route("/catalog/diff", catalogDiffRoutes);
adminRoutes.route("/customers", customerRoutes);
adminRoutes.route("/api-keys", apiKeyRoutes);
adminRoutes.route("/subscriptions", subscriptionRoutes);
adminRoutes.route("/snapshots", snapshotRoutes);
