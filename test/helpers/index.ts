// The test helpers, one module per concern; integration tests import them from here. The pure tests
// (no bindings) import ./time or ./stripe directly.
//   time       T0 and the units of time
//   worker     testWorker (the app over real bindings, injected clock), uid, check and problem readers
//   admin      setup through the admin API as the bootstrap key
//   operators  operator JWTs per role
//   d1         reads of D1 rows and audit rows
//   kv         reads of what was published to KV
//   stripe     webhook signing secrets
export * from "./admin";
export * from "./d1";
export * from "./kv";
export * from "./operators";
export * from "./stripe";
export * from "./time";
export * from "./worker";
