// The test helpers, one module per concern. A test imports the modules it needs by name, so each
// import line says which concern a helper belongs to; this index re-exports them all for the files
// that import "./helpers" whole.
//   time       T0 and the units of time (pure)
//   worker     testWorker (the app over real bindings, injected clock), uid, and readers of its answers:
//              check decisions, problem+json, cursor-paged lists
//   admin      setup through the admin API as the bootstrap key
//   operators  operator JWTs per role
//   d1         reads of D1 rows and audit rows
//   kv         reads of what was published to KV
//   stripe     webhook signing secrets (pure)
export * from "./admin";
export * from "./d1";
export * from "./kv";
export * from "./operators";
export * from "./stripe";
export * from "./time";
export * from "./worker";
