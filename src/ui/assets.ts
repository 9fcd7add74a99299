// The console's and portal's static files: Workers Static Assets, written into dist/assets/ui by
// scripts/build.mjs (htmx and uPlot from node_modules, our own CSS and script from src/ui/static).
// Vendor paths carry the package's version, so they are cached for a year; ours are revalidated.
// Nothing is loaded from elsewhere: the pages' CSP allows this origin only (src/ui/security.ts).
import { version as htmxVersion } from "htmx.org/package.json";
import { version as uplotVersion } from "uplot/package.json";

export const ASSET = {
  htmx: `/ui/vendor/htmx.org/${htmxVersion}/htmx.min.js`,
  uplotJs: `/ui/vendor/uplot/${uplotVersion}/uPlot.iife.min.js`,
  uplotCss: `/ui/vendor/uplot/${uplotVersion}/uPlot.min.css`,
  css: "/ui/app/tollgate.css",
  consoleJs: "/ui/app/console.js",
} as const;
