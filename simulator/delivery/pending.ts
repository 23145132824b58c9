import type { Knex } from "knex";
import type { QueryTarget } from "../../src/db/sql.js";
import type { BareJid } from "../../src/util/ids.js";
import type { LocalDelivery } from "./local.js";

/** An accepted delivery to a gatekeeper user that the user has not processed yet. */
export interface PendingDelivery {
  id: number;
  delivery: LocalDelivery;
}

/**
 * Durable hand-over from acceptance to the simulated user (migration 0003): `add` runs in the
 * acceptance's transaction, `complete` in the transaction that records what the user received, so
 * an accepted message survives a crash at any point in between and is processed once.
 */
export class PendingDeliveries {
  constructor(private readonly knex: Knex) {}

  async add(trx: Knex.Transaction, delivery: LocalDelivery, at: number): Promise<number> {
    const [row] = (await trx("gk_local_pending")
      .insert({ jid: delivery.to, data: serialize(delivery), at })
      .returning("id")) as ({ id: number } | number)[];
    if (row === undefined) throw new Error("gk_local_pending insert returned no id");
    return typeof row === "number" ? row : row.id;
  }

  /** Removes a processed delivery; `db` is the transaction that recorded its outcome. */
  async complete(db: QueryTarget, id: number): Promise<void> {
    await db("gk_local_pending").where({ id }).delete();
  }

  /** Everything not yet processed, in acceptance order. */
  async all(): Promise<PendingDelivery[]> {
    const rows = (await this.knex("gk_local_pending").orderBy("id")) as {
      id: number;
      jid: BareJid;
      data: string;
    }[];
    return rows.map((r) => ({ id: r.id, delivery: { ...deserialize(r.data), pendingId: r.id } }));
  }
}

/** JSON with the byte arrays and dates a delivery carries tagged, so they come back typed. */
function serialize(delivery: LocalDelivery): string {
  return JSON.stringify(delivery, function (this: Record<string, unknown>, key, value: unknown) {
    const raw = this[key];
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString("base64") };
    if (raw instanceof Date) return { $date: raw.toISOString() };
    return value;
  });
}

function deserialize(data: string): LocalDelivery {
  return JSON.parse(data, (_key, value: unknown) => {
    if (typeof value === "object" && value !== null) {
      const tagged = value as { $bytes?: unknown; $date?: unknown };
      if (typeof tagged.$bytes === "string") {
        return new Uint8Array(Buffer.from(tagged.$bytes, "base64"));
      }
      if (typeof tagged.$date === "string") return new Date(tagged.$date);
    }
    return value;
  }) as LocalDelivery;
}
