import { createHash, timingSafeEqual } from "node:crypto";
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
  /** The whole body: to-device events, device lists and key counts for RoomCrypto (MSC2409/3202). */
  raw?: Record<string, unknown>;
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
    serveLegacyPaths(this.expressApp);
  }

  setTransactionHandler(handler: TransactionHandler): void {
    this.handler = handler;
  }

  /** Waits for the transactions being handled (shutdown). */
  async drain(): Promise<void> {
    await this.queue;
  }

  /**
   * The homeserver's token, from the Authorization header (current spec, Synapse 1.92+) or the
   * `access_token` query parameter (older Synapse), compared in constant time. Answers and returns
   * true when it is missing (401 M_MISSING_TOKEN) or wrong (403 M_FORBIDDEN), as the application
   * service API says. Also guards the library's user and room query routes.
   */
  refuseBadToken(req: Request, res: Response): boolean {
    const header = req.headers.authorization;
    const query = req.query["access_token"];
    const token = header?.startsWith("Bearer ")
      ? header.slice("Bearer ".length)
      : typeof query === "string"
        ? query
        : undefined;
    if (token === undefined || token === "") {
      res.status(401).json({ errcode: "M_MISSING_TOKEN", error: "Missing homeserver token" });
      return true;
    }
    if (!sameSecret(token, this.hsToken)) {
      this.log.warn({ path: req.path }, "request with a wrong homeserver token refused");
      res.status(403).json({ errcode: "M_FORBIDDEN", error: "Bad token supplied" });
      return true;
    }
    return false;
  }

  answerTransaction(req: Request, res: Response): void {
    if (this.refuseBadToken(req, res)) return;
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
      raw: body,
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
// The library's own check (user and room queries, ping) compares with !== and answers 403 for a
// missing token; ours replaces it the same way.
Object.defineProperty(TransactionalAppService.prototype, "isInvalidToken", {
  value: function (this: TransactionalAppService, req: Request, res: Response): boolean {
    return this.refuseBadToken(req, res);
  },
});

/**
 * Synapse before 1.92 pushes to the legacy paths (`/transactions/{txnId}`, `/users/{userId}`,
 * `/rooms/{alias}`) and does not follow redirects, while matrix-appservice answers those with a
 * 308 to `/_matrix/app/v1/...`. The legacy paths are therefore rewritten to the current ones before
 * the library's routes see them: both paths are served by the same handlers.
 */
function serveLegacyPaths(app: AppService["expressApp"]): void {
  app.use((req, _res, next) => {
    if (/^\/(transactions|users|rooms)\//.test(req.url)) req.url = `/_matrix/app/v1${req.url}`;
    next();
  });
  // Express runs its stack in order, and the library registered its routes in its constructor:
  // move this rewrite in front of the first route (after the body parser and logging).
  const stack = (app as unknown as { _router: { stack: { route?: unknown }[] } })._router.stack;
  const rewrite = stack.pop();
  const firstRoute = stack.findIndex((layer) => layer.route !== undefined);
  if (rewrite !== undefined)
    stack.splice(firstRoute === -1 ? stack.length : firstRoute, 0, rewrite);
}

/** Constant-time equality of two secrets of any length (their digests have equal length). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
