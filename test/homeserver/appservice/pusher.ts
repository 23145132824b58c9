import type { Logger } from "../../../src/util/log.js";
import type {
  EphemeralEvent,
  HomeserverProfile,
  JsonObject,
  PushAttempt,
  PushFault,
  PushFaultInjector,
  RoomEvent,
} from "../types.js";
import type { Appservice } from "./registration.js";
import { callAppservice } from "./transport.js";

export interface PusherOptions {
  profile: HomeserverProfile;
  pushTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  logger: Logger;
  injector: () => PushFaultInjector | undefined;
  /** True while the homeserver plays dead: no push goes out, the attempt counts as failed. */
  down?: () => boolean;
  /**
   * The encryption extensions (MSC2409 to-device, MSC3202 device lists and key counts) of a new
   * transaction, computed once when it is formed so that retries resend the very same body, as
   * Synapse does.
   */
  extensions?: (contents: TransactionContents) => JsonObject;
}

/** What a transaction carries before its extensions are added. */
export interface TransactionContents {
  events: RoomEvent[];
  ephemeral: EphemeralEvent[];
  /** To-device events with `to_user_id` and `to_device_id` (MSC2409). */
  toDevice: JsonObject[];
  /** Users whose device list changed (MSC3202). */
  deviceListsChanged: string[];
}

interface Transaction extends TransactionContents {
  txnId: string;
  body: JsonObject;
  attempts: number;
}

/** Events per transaction, as Synapse batches them. */
const MAX_BATCH = 100;

/**
 * The per-appservice transaction queue (spec: AS API "Pushing events"): linearised, one transaction
 * in flight, retried with the same id and the same contents, exponential backoff while failing.
 */
export class AppservicePusher {
  private pendingEvents: RoomEvent[] = [];
  private pendingEphemeral: EphemeralEvent[] = [];
  private pendingToDevice: JsonObject[] = [];
  private pendingDeviceLists = new Set<string>();
  private inFlight: Transaction | undefined;
  private nextTxn = 1;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  /** Every transaction the appservice acknowledged, in order (for tests and diagnostics). */
  readonly delivered: {
    txnId: string;
    events: RoomEvent[];
    ephemeral: EphemeralEvent[];
    toDevice: JsonObject[];
    /** The whole body as pushed, extensions included. */
    body: JsonObject;
  }[] = [];

  constructor(
    private readonly appservice: Appservice,
    private readonly options: PusherOptions,
  ) {}

  enqueue(event: RoomEvent): void {
    this.pendingEvents.push(event);
    this.kick();
  }

  enqueueEphemeral(event: EphemeralEvent): void {
    this.pendingEphemeral.push(event);
    this.kick();
  }

  /** A to-device event for one of the appservice's users' devices (MSC2409). */
  enqueueToDevice(event: JsonObject): void {
    this.pendingToDevice.push(event);
    this.kick();
  }

  /** A device-list change the appservice is interested in (MSC3202). */
  enqueueDeviceListChange(userId: string): void {
    this.pendingDeviceLists.add(userId);
    this.kick();
  }

  get idle(): boolean {
    return this.inFlight === undefined && !this.hasPending();
  }

  private hasPending(): boolean {
    return (
      this.pendingEvents.length > 0 ||
      this.pendingEphemeral.length > 0 ||
      this.pendingToDevice.length > 0 ||
      this.pendingDeviceLists.size > 0
    );
  }

  /** Resolves once everything queued so far has been acknowledged. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.abort.abort();
    clearTimeout(this.retryTimer);
  }

  private kick(): void {
    if (this.inFlight !== undefined || this.abort.signal.aborted) return;
    if (!this.appservice.registration.url) {
      // No URL: the appservice receives nothing (spec, Registration).
      this.pendingEvents = [];
      this.pendingEphemeral = [];
      this.pendingToDevice = [];
      this.pendingDeviceLists.clear();
    }
    if (!this.hasPending()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const contents: TransactionContents = {
      events: this.pendingEvents.splice(0, MAX_BATCH),
      ephemeral: this.pendingEphemeral.splice(0, MAX_BATCH),
      toDevice: this.pendingToDevice.splice(0, MAX_BATCH),
      deviceListsChanged: [...this.pendingDeviceLists],
    };
    this.pendingDeviceLists.clear();
    const body: JsonObject = { events: contents.events };
    if (contents.ephemeral.length > 0) {
      body[this.options.profile === "spec" ? "ephemeral" : "de.sorunome.msc2409.ephemeral"] =
        contents.ephemeral;
    }
    Object.assign(body, this.options.extensions?.(contents));
    this.inFlight = { ...contents, txnId: String(this.nextTxn++), body, attempts: 0 };
    void this.send(this.inFlight);
  }

  private async send(txn: Transaction): Promise<void> {
    txn.attempts += 1;
    const log = this.options.logger.child({
      appservice: this.appservice.id,
      txnId: txn.txnId,
      attempt: txn.attempts,
    });
    const attempt: PushAttempt = {
      appserviceId: this.appservice.id,
      txnId: txn.txnId,
      attempt: txn.attempts,
      events: txn.events,
      ephemeral: txn.ephemeral,
      toDevice: txn.toDevice,
      body: txn.body,
    };
    let failure: { retryAfterMs?: number; reason: string } | undefined;
    try {
      if (this.options.down?.() === true) {
        failure = { reason: "the homeserver is down" };
      } else {
        const fault = this.options.injector()?.(attempt);
        failure = await this.deliver(txn, fault);
      }
    } catch (err) {
      failure = { reason: err instanceof Error ? err.message : String(err) };
    }
    if (this.abort.signal.aborted) return;
    if (failure === undefined) {
      log.debug("transaction acknowledged");
      this.delivered.push({
        txnId: txn.txnId,
        events: txn.events,
        ephemeral: txn.ephemeral,
        toDevice: txn.toDevice,
        body: txn.body,
      });
      this.inFlight = undefined;
      this.kick();
      return;
    }
    const backoff = Math.min(
      this.options.retryMaxMs,
      this.options.retryInitialMs * 2 ** (txn.attempts - 1),
    );
    const delay = Math.max(backoff, failure.retryAfterMs ?? 0);
    log.debug({ delay, reason: failure.reason }, "transaction failed; retrying");
    this.retryTimer = setTimeout(() => void this.send(txn), delay);
  }

  /** Returns undefined on success, otherwise why it failed. */
  private async deliver(
    txn: Transaction,
    fault: PushFault | undefined,
  ): Promise<{ retryAfterMs?: number; reason: string } | undefined> {
    if (fault !== undefined && fault.deliver !== true) return this.simulate(fault);
    const body = txn.body;
    const path = `/transactions/${encodeURIComponent(txn.txnId)}`;
    const answer = await callAppservice(
      this.options.profile,
      this.appservice.registration.url ?? "",
      this.appservice.registration.hs_token,
      {
        method: "PUT",
        path: `/_matrix/app/v1${path}`,
        legacyPath: path,
        body,
        timeoutMs: this.options.pushTimeoutMs,
        signal: this.abort.signal,
      },
    );
    if (fault !== undefined) return this.simulate(fault);
    if (answer.status >= 200 && answer.status < 300) return undefined;
    return { reason: `appservice answered ${answer.status}`, ...retryAfter(answer.text) };
  }

  private async simulate(fault: PushFault): Promise<{ retryAfterMs?: number; reason: string }> {
    if (fault.timeout === true) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pushTimeoutMs);
        this.abort.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), {
          once: true,
        });
      });
      return { reason: "injected timeout" };
    }
    const status = fault.status ?? 500;
    const retry = fault.body?.["retry_after_ms"];
    return {
      reason: `injected status ${status}`,
      ...(typeof retry === "number" ? { retryAfterMs: retry } : {}),
    };
  }
}

function retryAfter(text: string): { retryAfterMs?: number } {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const ms = parsed["retry_after_ms"];
    return typeof ms === "number" ? { retryAfterMs: ms } : {};
  } catch {
    return {};
  }
}
