import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  DEFAULT_MEDIA_LIMITS,
  DEFAULT_MEDIA_RETENTION_SECONDS,
  DEFAULT_MIN_SLOT_SECONDS,
  DEFAULT_UPLOADS_PER_HOUR,
  isMediaKind,
} from "../../src/interop/media/kinds.js";
import type { UploadSlot } from "../../src/interop/media/origin.js";
import { BridgeError } from "../../src/util/errors.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { GET_PREFIX, handleRequest, PUT_PREFIX } from "./handlers.js";
import { isExpired, type BlobEntry, type MediaStoreLimits } from "./state.js";

export type { MediaStoreLimits } from "./state.js";

export interface MediaStoreOptions {
  /** Where blobs are written; created if missing. */
  readonly dataDir: string;
  /** Defaults to 127.0.0.1; the store is a test deployment and serves plain http (§14.2). */
  readonly host?: string;
  /** Defaults to 0 (any free port). */
  readonly port?: number;
  /**
   * Origin written into slot URLs and to be announced as `media-origin`, when clients reach the
   * store under another name than its listening address (a container, a proxy). Defaults to
   * `http://<host>:<port>`.
   */
  readonly publicOrigin?: string;
  readonly limits?: Partial<MediaStoreLimits>;
  /** Milliseconds since the epoch; injectable so tests can move time instead of waiting. */
  readonly now?: () => number;
  /** Period of the automatic sweep; 0 (the default) leaves sweeping to explicit `sweep()` calls. */
  readonly sweepIntervalMs?: number;
  readonly logger?: Logger;
}

export interface SlotRequest {
  /** As received in the IQ; an unknown kind is refused with `bad-request`. */
  readonly kind: string;
  /** Exact encrypted blob length (§14.1). */
  readonly size: number;
  /** The requesting provider user (bare JID), the scope of `uploads-per-hour`. */
  readonly owner: string;
}

export interface IssuedSlot extends UploadSlot {
  readonly expires: Date;
}

export type SlotRefusal = "too-large" | "bad-request" | "rate-limited";

/**
 * A slot request the gatekeeper refuses (§14.1). The IQ handler maps `code`: `too-large` to
 * `not-acceptable` + `<too-large max>`, `bad-request` to `bad-request`, `rate-limited` to
 * `resource-constraint` + `<rate-limited scope='upload' retry-after>`.
 */
export class SlotRefusedError extends BridgeError {
  constructor(
    readonly refusal: SlotRefusal,
    message: string,
    readonly details: { max?: number; retryAfterSeconds?: number } = {},
    retryAt?: Date,
  ) {
    super(refusal, message, retryAt === undefined ? {} : { retryAt });
  }
}

const HOUR_MS = 3_600_000;

/** The gatekeeper's media store over loopback HTTP (§14): issues slots, accepts PUTs, serves GETs. */
export class MediaStore {
  private readonly entries = new Map<string, BlobEntry>();
  private readonly slotTimes = new Map<string, number[]>();
  private limitsInEffect: MediaStoreLimits;
  private readonly now: () => number;
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;

  private constructor(
    private readonly server: Server,
    private readonly dataDir: string,
    readonly origin: string,
    options: MediaStoreOptions,
  ) {
    this.limitsInEffect = resolveLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.log = (options.logger ?? silentLogger()).child({ component: "media-store" });
  }

  static async start(options: MediaStoreOptions): Promise<MediaStore> {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const server = createServer();
    const host = options.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const origin = new URL(
      options.publicOrigin ?? `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ).origin;
    const store = new MediaStore(server, options.dataDir, origin, options);
    const ctx = {
      entries: store.entries,
      limits: () => store.limitsInEffect,
      now: store.now,
      blobPath: (id: string) => join(options.dataDir, `${id}.blob`),
      partPath: (id: string) => join(options.dataDir, `${id}.part`),
    };
    server.on("request", (req, res) => handleRequest(ctx, store.log, req, res));
    if ((options.sweepIntervalMs ?? 0) > 0) {
      store.sweeper = setInterval(() => {
        store.sweep().catch((err: unknown) => store.log.warn({ err }, "media sweep failed"));
      }, options.sweepIntervalMs);
      store.sweeper.unref();
    }
    return store;
  }

  get limits(): MediaStoreLimits {
    return this.limitsInEffect;
  }

  /** Changes limits for later requests, as a new hello announcement would. */
  setLimits(limits: Partial<MediaStoreLimits>): void {
    this.limitsInEffect = resolveLimits({ ...this.limitsInEffect, ...limits });
  }

  /** Issues a slot or throws {@link SlotRefusedError}; counts against the owner's hourly quota. */
  createSlot(request: SlotRequest): IssuedSlot {
    const { kind, size, owner } = request;
    if (!isMediaKind(kind))
      throw new SlotRefusedError("bad-request", `unknown media kind ${JSON.stringify(kind)}`);
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new SlotRefusedError(
        "bad-request",
        `slot size must be a positive integer, got ${String(size)}`,
      );
    }
    const max = this.limitsInEffect.maxBytes[kind];
    if (size > max)
      throw new SlotRefusedError("too-large", `${kind} blob of ${size} bytes above ${max}`, {
        max,
      });

    const now = this.now();
    const recent = (this.slotTimes.get(owner) ?? []).filter((t) => t > now - HOUR_MS);
    const oldest = recent[0];
    if (oldest !== undefined && recent.length >= this.limitsInEffect.uploadsPerHour) {
      const retryAfterSeconds = Math.max(1, Math.ceil((oldest + HOUR_MS - now) / 1000));
      this.slotTimes.set(owner, recent);
      throw new SlotRefusedError(
        "rate-limited",
        `${owner} used ${recent.length} upload slots in the last hour`,
        { retryAfterSeconds },
        new Date(now + retryAfterSeconds * 1000),
      );
    }
    recent.push(now);
    this.slotTimes.set(owner, recent);

    // 128 random bits each: the GET URL is a capability (§14.2), the token guards the PUT.
    const id = randomBytes(16).toString("hex");
    const token = randomBytes(16).toString("base64url");
    const slotExpires = now + this.limitsInEffect.slotSeconds * 1000;
    this.entries.set(id, { id, kind, size, owner, token, slotExpires, state: "open" });
    return {
      putUrl: `${this.origin}${PUT_PREFIX}${id}`,
      headers: [{ name: "Authorization", value: `Bearer ${token}` }],
      getUrl: `${this.origin}${GET_PREFIX}${id}`,
      expires: new Date(slotExpires),
    };
  }

  /**
   * Deletes blobs past retention (later GETs answer 410) and forgets slots that expired unused a
   * retention period ago (their late PUTs answer 410 until then, 404 after).
   */
  async sweep(): Promise<{ blobsRemoved: number; slotsForgotten: number }> {
    const now = this.now();
    const { retentionSeconds } = this.limitsInEffect;
    let blobsRemoved = 0;
    let slotsForgotten = 0;
    for (const entry of this.entries.values()) {
      if (entry.state === "stored" && isExpired(entry, retentionSeconds, now)) {
        entry.state = "gone";
        await rm(join(this.dataDir, `${entry.id}.blob`), { force: true });
        blobsRemoved++;
      } else if (entry.state === "open" && now >= entry.slotExpires + retentionSeconds * 1000) {
        this.entries.delete(entry.id);
        slotsForgotten++;
      }
    }
    if (blobsRemoved + slotsForgotten > 0)
      this.log.debug({ blobsRemoved, slotsForgotten }, "media store swept");
    return { blobsRemoved, slotsForgotten };
  }

  /** Stops the sweeper and the server, dropping open connections. Stored files are left in place. */
  async close(): Promise<void> {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function resolveLimits(given: Partial<MediaStoreLimits> = {}): MediaStoreLimits {
  return {
    maxBytes: { ...DEFAULT_MEDIA_LIMITS, ...given.maxBytes },
    retentionSeconds: given.retentionSeconds ?? DEFAULT_MEDIA_RETENTION_SECONDS,
    // §14.1: a slot is valid at least min-slot-seconds.
    slotSeconds: Math.max(given.slotSeconds ?? DEFAULT_MIN_SLOT_SECONDS, DEFAULT_MIN_SLOT_SECONDS),
    uploadsPerHour: given.uploadsPerHour ?? DEFAULT_UPLOADS_PER_HOUR,
  };
}
