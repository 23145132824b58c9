import type { Request, Response } from "express";
import { AppService } from "matrix-appservice-bridge";
import type { WeakEvent } from "matrix-appservice-bridge";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** An ephemeral event (receipt, typing) pushed with a transaction (MSC2409 / spec v1.13). */
export interface EphemeralEvent {
  type: string;
  room_id?: string;
  content: Record<string, unknown>;
}

export interface Transaction {
  id: string;
  events: WeakEvent[];
  ephemeral: EphemeralEvent[];
}

/** Resolves once every event of the transaction is durably handled; rejects to have it retried. */
export type TransactionHandler = (txn: Transaction) => Promise<void>;

/** How many acknowledged transaction ids are remembered for an immediate answer to a repeat. */
const REMEMBERED = 64;

/**
 * matrix-appservice's AppService answers a transaction with 200 before anything was handled, so a
 * failure loses the events. This subclass answers only after the handler finished: 200 when it
 * resolved, 500 when it rejected, so the homeserver retries the same transaction. Transactions are
 * handled one at a time in arrival order. A repeat of an acknowledged transaction is answered at
 * once; events of a retried one that were handled before are skipped by the handler (by event id).
 */
export class TransactionalAppService extends AppService {
  private handler: TransactionHandler | undefined;
  private readonly acknowledged: string[] = [];
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly hsToken: string,
    private readonly log: Logger,
  ) {
    super({ homeserverToken: hsToken });
  }

  setTransactionHandler(handler: TransactionHandler): void {
    this.handler = handler;
  }

  /** Waits for the transactions being handled (shutdown). */
  async drain(): Promise<void> {
    await this.queue;
  }

  answerTransaction(req: Request, res: Response): void {
    const header = req.headers.authorization;
    const query = req.query["access_token"];
    const token = header?.startsWith("Bearer ") ? header.slice(7) : query;
    if (token !== this.hsToken) {
      res.status(403).json({ errcode: "M_FORBIDDEN", error: "Bad token supplied" });
      return;
    }
    const id = req.params["txnId"];
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (id === undefined || id === "") {
      res.status(400).json({ errcode: "M_MISSING_PARAM", error: "Missing transaction id" });
      return;
    }
    if (this.acknowledged.includes(id)) {
      res.json({});
      return;
    }
    const txn: Transaction = {
      id,
      events: asArray<WeakEvent>(body["events"]),
      ephemeral: asArray<EphemeralEvent>(
        body["ephemeral"] ?? body["de.sorunome.msc2409.ephemeral"],
      ),
    };
    this.queue = this.queue.then(async () => {
      try {
        if (this.handler === undefined) throw new Error("the bridge is not ready for events yet");
        await this.handler(txn);
        this.acknowledged.push(id);
        if (this.acknowledged.length > REMEMBERED) this.acknowledged.shift();
        res.json({});
      } catch (err) {
        this.log.warn(
          { txnId: id, err: describeError(err) },
          "transaction failed; the homeserver will retry it",
        );
        res
          .status(500)
          .json({ errcode: "M_UNKNOWN", error: "The bridge could not handle the transaction" });
      }
    });
  }
}

// AppService binds `this.onTransaction` to the transaction routes in its constructor; it is
// private in the typings, so the override is installed on the prototype, where the constructor's
// lookup finds it.
Object.defineProperty(TransactionalAppService.prototype, "onTransaction", {
  value: function (this: TransactionalAppService, req: Request, res: Response): void {
    this.answerTransaction(req, res);
  },
});

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
