// The console (src/ui/console): pages through the worker as a browser would use them.
import { describe, expect, it } from "vitest";
import { createCustomer } from "./helpers/admin";
import { consoleUser } from "./helpers/console";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker();

describe("console", () => {
  it("signs in (development) and finds a customer", async () => {
    const id = uid();
    await createCustomer(w, { id, name: "Smoke Co" });
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    const page = await sam.get(`/console?q=${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("Smoke Co");
    const customer = await sam.get(`/console/customers/${id}`);
    expect(customer.status, customer.text.slice(0, 2000)).toBe(200);
  });
});
