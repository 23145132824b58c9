import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
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
 * failure loses the events. This subclass answers only after the handler resolved (with the
 * ingress: once the events are durably recorded, src/matrix/ingress/), 500 when it rejected, so
 * the homeserver retries the same transaction. Transactions are taken one at a time in arrival
 * order. A repeat of an acknowledged transaction is answered at once; a copy that arrives while
 * the first is still being taken waits for it and gets the same answer (it is never taken twice).
 *
 * The HTTP surface answers JSON errors only (the spec's errcodes, never Express's HTML page with
 * a stack trace): the homeserver token is checked before the body is read, a body that is not
 * JSON is 400 M_NOT_JSON, one above the size limit 413 M_TOO_LARGE, and a transaction without an
 * `events` array is refused rather than acknowledged as empty.
 */
export class TransactionalAppService extends AppService {
  private handler: TransactionHandler | undefined;
  private readonly acknowledged: string[] = [];
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly hsToken: string,
    private readonly log: Logger,
  ) {
    super({ homeserverToken: hsToken });
    guardBeforeBody(this.expressApp, (req, res) => this.refuseBadToken(req, res));
    serveLegacyPaths(this.expressApp);
  }

  setTransactionHandler(handler: TransactionHandler): void {
    this.handler = handler;
  }

  /** Waits for the transactions being taken (shutdown). */
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
    if (id === undefined || id === "") {
      res.status(400).json({ errcode: "M_MISSING_PARAM", error: "Missing transaction id" });
      return;
    }
    // body-parser leaves a body of another content type unread ({}): acknowledging it would
    // remember the id and skip the correct retry, losing its events.
    if (!req.is("application/json")) {
      res.status(400).json({ errcode: "M_NOT_JSON", error: "The body must be application/json" });
      return;
    }
    const body = req.body as unknown;
    if (typeof body !== "object" || body === null || !Array.isArray((body as Txn)["events"])) {
      res.status(400).json({ errcode: "M_BAD_JSON", error: "A transaction needs an events array" });
      return;
    }
    if (this.acknowledged.includes(id)) {
      res.json({});
      return;
    }
    let taken = this.inFlight.get(id);
    if (taken === undefined) {
      const txn: Transaction = {
        id,
        events: asArray<WeakEvent>((body as Txn)["events"]),
        ephemeral: asArray<EphemeralEvent>(
          (body as Txn)["ephemeral"] ?? (body as Txn)["de.sorunome.msc2409.ephemeral"],
        ),
        // The whole body, for the encryption extensions (to-device, device lists, key counts).
        raw: body as Record<string, unknown>,
      };
      taken = this.queue.then(() => this.take(txn));
      this.queue = taken;
      this.inFlight.set(id, taken);
      void taken.finally(() => this.inFlight.delete(id));
    }
    void taken.then((ok) => {
      if (ok) {
        res.json({});
      } else {
        res
          .status(500)
          .json({ errcode: "M_UNKNOWN", error: "The bridge could not take the transaction" });
      }
    });
  }

  private async take(txn: Transaction): Promise<boolean> {
    try {
      if (this.handler === undefined) throw new Error("the bridge is not ready for events yet");
      await this.handler(txn);
      this.acknowledged.push(txn.id);
      if (this.acknowledged.length > REMEMBERED) this.acknowledged.shift();
      return true;
    } catch (err) {
      this.log.warn(
        { txnId: txn.id, err: describeError(err) },
        "transaction failed; the homeserver will retry it",
      );
      return false;
    }
  }
}

type Txn = Record<string, unknown>;

/** The appservice API's own paths (current and legacy); provisioning has its own auth. */
const APPSERVICE_PATH = /^\/(_matrix\/app\/|transactions\/|users\/|rooms\/)/;

/**
 * Puts the homeserver-token check in front of the library's body parser (a request with a wrong
 * token is refused before its body is read), and a JSON error handler right after it: a body
 * that is not JSON (M_NOT_JSON) or too large (M_TOO_LARGE) is answered as the spec says, and any
 * other error as M_UNKNOWN, never with Express's HTML page, stack trace or install paths.
 */
function guardBeforeBody(
  app: AppService["expressApp"],
  refuse: (req: Request, res: Response) => boolean,
): void {
  const stack = (app as unknown as { _router: { stack: { name?: string }[] } })._router.stack;
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (APPSERVICE_PATH.test(req.path) && refuse(req, res)) return;
    next();
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const type = (err as { type?: unknown }).type;
    if (type === "entity.too.large") {
      res.status(413).json({ errcode: "M_TOO_LARGE", error: "The body is too large" });
    } else if (
      (typeof type === "string" && type.startsWith("entity.")) ||
      type === "encoding.unsupported" ||
      type === "charset.unsupported"
    ) {
      res.status(400).json({ errcode: "M_NOT_JSON", error: "The body is not valid JSON" });
    } else {
      res.status(500).json({ errcode: "M_UNKNOWN", error: "Internal error" });
    }
  });
  const errors = stack.pop();
  const guard = stack.pop();
  const parser = stack.findIndex((layer) => layer.name === "jsonParser");
  if (guard === undefined || errors === undefined) return;
  const at = parser === -1 ? stack.length : parser;
  stack.splice(at, 0, guard);
  stack.splice(at + 2, 0, errors);
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
