import { createWriteStream } from "node:fs";
import type { OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "../../util/errors.js";
import { silentLogger, type Logger } from "../../util/log.js";
import { isRetryableMediaError, MediaTooLargeError, MediaTransferError } from "./errors.js";
import { createAgents, openGet, putBody, type Deadlines, type HttpAgents } from "./http.js";
import type { MediaKind, MediaLimits } from "./kinds.js";
import { checkMediaUrl, checkUploadSlot, type UploadSlot } from "./origin.js";

/** The media rules in effect: origins and limits of the latest successful hello (§8.3). */
interface MediaPolicy {
  readonly origins: readonly string[];
  readonly limits: MediaLimits;
}

export interface TransferOptions {
  /** Read on every call, so that a new hello takes effect at once. */
  readonly policy: () => MediaPolicy;
  /** Permit `http` to loopback IP literals (test deployments, §14.2). Default false. */
  readonly allowInsecureLoopback?: boolean;
  /** Default 30 s without a byte in either direction. */
  readonly idleTimeoutMs?: number;
  /** Default 10 min for a whole request, body included. */
  readonly totalTimeoutMs?: number;
  /** Download retries after transport errors; §14.4 allows at most 3, which is the default. */
  readonly maxRetries?: number;
  /** First pause before a retry, doubled each time. Default 500 ms. */
  readonly retryDelayMs?: number;
  /** Agents to use instead of fresh keep-alive ones (e.g. one trusting a test CA). */
  readonly agents?: HttpAgents;
  readonly now?: () => Date;
  readonly logger?: Logger;
}

const MAX_RETRIES = 3;

/**
 * HTTP client for the gatekeeper's media store (§14.2, §14.4). Obtaining a slot is the IQ
 * layer's job; this client only moves blobs, and refuses anything outside the announced origins.
 */
export class MediaTransferClient {
  private readonly agents: HttpAgents;
  private readonly ownsAgents: boolean;
  private readonly deadlines: Deadlines;
  private readonly maxRetries: number;
  private readonly log: Logger;

  constructor(private readonly options: TransferOptions) {
    this.agents = options.agents ?? createAgents();
    this.ownsAgents = options.agents === undefined;
    this.deadlines = {
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      totalTimeoutMs: options.totalTimeoutMs ?? 600_000,
    };
    this.maxRetries = Math.min(options.maxRetries ?? MAX_RETRIES, MAX_RETRIES);
    this.log = (options.logger ?? silentLogger()).child({ component: "media-transfer" });
  }

  /**
   * Throws `media-too-large` (with the limit) unless a blob of `blobLength` bytes of `kind` fits
   * the limits in effect. Call before encrypting a large file and before requesting a slot.
   */
  assertWithinLimit(kind: MediaKind, blobLength: number): void {
    const limit = this.limitFor(kind);
    if (blobLength > limit) throw new MediaTooLargeError(kind, blobLength, limit);
  }

  /** Maximum encrypted blob length for `kind` under the limits in effect. */
  limitFor(kind: MediaKind): number {
    return this.options.policy().limits[kind];
  }

  /** Throws `media-url-refused` unless `url` may be fetched under the policy in effect (§14.4). */
  checkUrl(url: string): URL {
    return checkMediaUrl(url, this.urlPolicy());
  }

  /**
   * PUTs a blob into a slot. Resolves only on `201`; the message referencing the blob may be
   * sent after that (§14.2). Not retried: a repeated PUT into a filled slot answers 409, so the
   * caller requests a new slot instead. `body` must yield exactly `blobLength` bytes.
   */
  async upload(
    slot: UploadSlot,
    kind: MediaKind,
    blobLength: number,
    body: () => Readable,
  ): Promise<void> {
    this.assertWithinLimit(kind, blobLength);
    const { put } = checkUploadSlot(slot, this.urlPolicy());
    if (slot.expires !== undefined && slot.expires.getTime() <= this.now().getTime()) {
      throw new MediaTransferError(
        "media-expired",
        `upload slot expired at ${slot.expires.toISOString()}`,
      );
    }
    const headers: OutgoingHttpHeaders = {};
    for (const { name, value } of slot.headers) headers[name] = value;
    headers["Content-Type"] = "application/octet-stream";
    headers["Content-Length"] = String(blobLength);
    const { status } = await putBody(put, headers, body(), this.agents, this.deadlines);
    this.log.debug({ origin: put.origin, status, blobLength }, "media upload answered");
    if (status === 201) return;
    if (status === 413) {
      throw new MediaTooLargeError(kind, blobLength, undefined, {
        message: `media store refused ${blobLength} bytes of ${kind} as above its limit (413)`,
      });
    }
    throw putStatusError(status, put.origin);
  }

  /**
   * GETs a blob and hands the capped body to `consume`; once more than `maxLength` bytes arrived
   * the transfer is aborted. Transport failures (including those surfacing inside `consume`) are
   * retried at most 3 times, each with a fresh body; any other failure is final (§14.4).
   */
  async download<T>(
    url: string,
    maxLength: number,
    consume: (body: Readable) => Promise<T>,
  ): Promise<T> {
    const target = this.checkUrl(url);
    for (let attempt = 0; ; attempt++) {
      try {
        const { status, body } = await openGet(target, maxLength, this.agents, this.deadlines);
        if (status !== 200) throw getStatusError(status, target.origin);
        return await consume(body);
      } catch (err) {
        if (!isRetryableMediaError(err) || attempt >= this.maxRetries) throw err;
        const pause = (this.options.retryDelayMs ?? 500) * 2 ** attempt;
        this.log.info(
          { origin: target.origin, attempt: attempt + 1, err: describeError(err) },
          "retrying media download",
        );
        await sleep(pause);
      }
    }
  }

  /** {@link download} into a file, truncated at each attempt. Verification is the caller's job. */
  async downloadToFile(url: string, maxLength: number, path: string): Promise<void> {
    await this.download(url, maxLength, (body) =>
      pipeline(body, createWriteStream(path, { mode: 0o600 })),
    );
  }

  /** Closes idle keep-alive connections of agents this client created. */
  close(): void {
    if (!this.ownsAgents) return;
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private urlPolicy() {
    return {
      origins: this.options.policy().origins,
      allowInsecureLoopback: this.options.allowInsecureLoopback ?? false,
    };
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }
}

function putStatusError(status: number, origin: string): MediaTransferError {
  const at = `media upload to ${origin}`;
  if (status >= 300 && status < 400) {
    return new MediaTransferError(
      "media-redirect-refused",
      `${at} answered a redirect (${status}), not followed`,
      status,
    );
  }
  switch (status) {
    case 400:
      return new MediaTransferError(
        "media-bad-length",
        `${at}: length differs from the slot size (400)`,
        status,
      );
    case 401:
    case 403:
      return new MediaTransferError(
        "media-unauthorized",
        `${at}: authorization refused (${status})`,
        status,
      );
    case 409:
      return new MediaTransferError(
        "media-already-uploaded",
        `${at}: slot already used (409)`,
        status,
      );
    case 410:
      return new MediaTransferError("media-expired", `${at}: slot expired (410)`, status);
    default:
      return new MediaTransferError(
        "media-http-status",
        `${at}: unexpected status ${status}`,
        status,
      );
  }
}

function getStatusError(status: number, origin: string): MediaTransferError {
  const at = `media download from ${origin}`;
  if (status >= 300 && status < 400) {
    return new MediaTransferError(
      "media-redirect-refused",
      `${at} answered a redirect (${status}), not followed`,
      status,
    );
  }
  if (status === 404)
    return new MediaTransferError("media-not-found", `${at}: unknown blob (404)`, status);
  if (status === 410)
    return new MediaTransferError("media-expired", `${at}: blob expired (410)`, status);
  return new MediaTransferError("media-http-status", `${at}: unexpected status ${status}`, status);
}
