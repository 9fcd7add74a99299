// Which customers a catalog change can reach (domain/catalog-reach.ts), and which webhook destinations
// are refused as local or private (domain/outbound-url.ts). Pure.
import { describe, expect, it } from "vitest";
import type { CompiledCatalog } from "../src/domain/catalog-compile";
import { catalogReach } from "../src/domain/catalog-reach";
import { privateDestination } from "../src/domain/outbound-url";

const base: CompiledCatalog = {
  format: 1,
  rev: 1,
  compiledAt: 0,
  features: { sso: { type: "boolean", failurePolicy: "closed" } },
  regionGroups: { EU: ["DE", "FR"] },
  plans: {
    free: { kind: "base", version: 1, entitlements: {} },
    pro: { kind: "base", version: 1, entitlements: { sso: { enabled: true } } },
  },
} as CompiledCatalog;

describe("catalogReach", () => {
  it("a plan's edit reaches its subscribers only; an unchanged catalog reaches nobody", () => {
    const after = { ...base, rev: 2, plans: { ...base.plans, pro: { ...base.plans.pro!, version: 2 } } };
    expect(catalogReach(base, after)).toEqual({ everyone: false, plans: ["pro"] });
    expect(catalogReach(base, { ...base, rev: 2 })).toEqual({ everyone: false, plans: [] });
  });

  it("added and deleted plans are reached; a feature or region group change reaches everyone", () => {
    const { free: _free, ...rest } = base.plans;
    const added = { ...base, plans: { ...rest, team: base.plans.pro! } };
    expect(catalogReach(base, added)).toEqual({ everyone: false, plans: ["free", "team"] });
    expect(catalogReach(base, { ...base, regionGroups: { EU: ["DE"] } })).toEqual({ everyone: true });
    const features = {
      ...base.features,
      beta: { type: "boolean", failurePolicy: "closed" },
    } as CompiledCatalog["features"];
    expect(catalogReach(base, { ...base, features })).toEqual({ everyone: true });
  });
});

describe("privateDestination", () => {
  it("refuses loopback, private, link-local and local names however they are written", () => {
    for (const url of [
      "https://localhost/",
      "https://LOCALHOST./",
      "https://db.internal/",
      "https://printer.local/",
      "https://0.0.0.0/",
      "https://127.1/",
      "https://0177.0.0.1/",
      "https://10.0.0.1/",
      "https://172.31.255.255/",
      "https://192.168.0.1/",
      "https://169.254.169.254/",
      "https://224.0.0.1/",
      "https://[::]/",
      "https://[::1]/",
      "https://[fc00::1]/",
      "https://[fe80::1%25eth0]/",
      "https://[::ffff:10.0.0.1]/",
      "https://a:b@example.com/",
    ]) {
      let parsed: URL | null = null;
      try {
        parsed = new URL(url);
      } catch {
        continue; // not a URL at all: the schema refuses it before this filter
      }
      expect(privateDestination(parsed), url).not.toBeNull();
    }
  });

  it("lets public names and addresses through", () => {
    for (const url of [
      "https://hooks.example.com/x",
      "https://8.8.8.8/",
      "https://172.32.0.1/",
      "https://[2606:4700::1111]/",
    ])
      expect(privateDestination(new URL(url)), url).toBeNull();
  });
});
