// usage.threshold and usage.limit_reached, decided where usage is exact: in the meter, in the same
// synchronous step as the counter change, so 200 concurrent consumes crossing 80 % yield one alert.
// Once per period per threshold: usage_alerts remembers what was raised for which counter period.
// Raised alerts wait in event_outbox (the same transaction as the counter) until the alarm's flush
// records them in D1 as outbound events (events/emit.ts); their ids come from the cause, so a flush
// retried after a lost acknowledgement records nothing twice.
import { reachedThresholds } from "../domain/usage-alerts";
import { emitEvents } from "../events/emit";
import { eventId } from "../events/ids";
import type { EventType, OutboundEvent } from "../events/types";

export interface AlertCounter {
  feature: string;
  definition: string;
  periodStart: number;
  periodEnd: number | null;
}

interface Raised {
  type: EventType;
  customerId: string;
  at: number;
  data: Record<string, unknown>;
}

export class UsageAlerts {
  constructor(readonly sql: SqlStorage) {}

  /** A counter moved from `before` to `after` under `limit`: raises the thresholds it reached. */
  moved(
    customerId: string,
    c: AlertCounter,
    limit: number | null,
    before: number,
    after: number,
    thresholds: number[],
    now: number,
  ): boolean {
    let raised = false;
    for (const threshold of reachedThresholds(limit, before, after, thresholds))
      raised =
        this.#raise(`threshold:${threshold}`, c, {
          type: "usage.threshold",
          customerId,
          at: now,
          data: { ...view(c), threshold, limit, used: after },
        }) || raised;
    return raised;
  }

  /** A consume was refused at the limit (or a record went over it): raised once per period. */
  limitReached(customerId: string, c: AlertCounter, limit: number | null, used: number, now: number): boolean {
    return this.#raise("limit", c, {
      type: "usage.limit_reached",
      customerId,
      at: now,
      data: { ...view(c), limit, used },
    });
  }

  pending(): number {
    return Number(this.sql.exec("SELECT COUNT(*) AS n FROM event_outbox").one().n);
  }

  /** Records the raised alerts in D1 (and enqueues their deliveries); throws, keeping them, when that fails. */
  async flush(env: Env, db: D1Database, now: number): Promise<number> {
    const rows = this.sql.exec("SELECT cause, event FROM event_outbox ORDER BY rowid LIMIT 50").toArray();
    if (rows.length === 0) return 0;
    const events: OutboundEvent[] = [];
    for (const r of rows) {
      const raised = JSON.parse(String(r.event)) as Raised;
      events.push({ ...raised, id: await eventId(raised.type, raised.customerId, String(r.cause)) });
    }
    await emitEvents(env, db, events, now);
    for (const r of rows) this.sql.exec("DELETE FROM event_outbox WHERE cause = ?", r.cause);
    return rows.length + (await this.flush(env, db, now));
  }

  #raise(alert: string, c: AlertCounter, event: Raised): boolean {
    const marked = this.sql.exec(
      "INSERT OR IGNORE INTO usage_alerts (feature, definition, period_start, alert) VALUES (?, ?, ?, ?)",
      c.feature,
      c.definition,
      c.periodStart,
      alert,
    ).rowsWritten;
    if (marked === 0) return false;
    const cause = `${c.feature}|${c.definition}|${c.periodStart}|${alert}`;
    this.sql.exec("INSERT OR IGNORE INTO event_outbox (cause, event) VALUES (?, ?)", cause, JSON.stringify(event));
    return true;
  }

  /** Markers of periods that ended: what the next period raises starts from nothing. */
  collect(now: number) {
    this.sql.exec("DELETE FROM usage_alerts WHERE period_start < ?", now - 400 * 24 * 3600_000);
  }
}

const view = (c: AlertCounter) => ({
  feature: c.feature,
  periodStart: new Date(c.periodStart).toISOString(),
  periodEnd: c.periodEnd === null ? null : new Date(c.periodEnd).toISOString(),
});

type Env = Parameters<typeof emitEvents>[0];
