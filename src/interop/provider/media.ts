import type { BareJid } from "../../util/ids.js";
import type { Logger } from "../../util/log.js";
import { decodeSlot, encodeSlotRequest } from "../codec/media.js";
import type { DecryptedMedia } from "../media/decrypt.js";
import { mediaLimitsFrom, type MediaKind } from "../media/kinds.js";
import { checkUploadSlot, type UploadSlot } from "../media/origin.js";
import { downloadAndDecrypt, type MediaReference } from "../media/receive.js";
import { encryptAndUpload, type UploadedMedia } from "../media/send.js";
import { MediaTransferClient, type TransferOptions } from "../media/transfer.js";
import type { GatekeeperIq } from "./iq-client.js";
import type { HelloSession } from "./session.js";

interface ProviderMediaOptions {
  readonly gk: GatekeeperIq;
  readonly session: HelloSession;
  readonly logger: Logger;
  /** Test deployments serve media over http on loopback (§14.2). */
  readonly allowInsecureLoopback?: boolean;
  /** Passed to the transfer client (agents, timeouts). */
  readonly transfer?: Omit<TransferOptions, "policy" | "allowInsecureLoopback" | "logger">;
}

/**
 * Media with the gatekeeper (§14): upload slots over IQ, and the transfer client bound to the
 * origins and per-kind limits of the latest hello, read on every call so that a new hello takes
 * effect at once (P20, P21).
 */
export class ProviderMedia {
  readonly client: MediaTransferClient;

  constructor(private readonly options: ProviderMediaOptions) {
    this.client = new MediaTransferClient({
      ...options.transfer,
      policy: () => ({
        origins: options.session.info?.mediaOrigins ?? [],
        limits: mediaLimitsFrom(options.session.limits),
      }),
      allowInsecureLoopback: options.allowInsecureLoopback ?? false,
      logger: options.logger,
    });
  }

  /**
   * Asks for a slot for a blob of exactly `size` bytes (§14.1) and refuses one whose URLs are
   * outside the announced origins.
   */
  async requestSlot(local: BareJid, kind: MediaKind, size: number): Promise<UploadSlot> {
    const payload = await this.options.gk.request(
      local,
      "get",
      encodeSlotRequest({ kind, size }),
      "upload slot request",
    );
    if (payload === undefined) throw new Error("upload slot request: empty result");
    const slot = decodeSlot(payload);
    const upload: UploadSlot = {
      putUrl: slot.put.url,
      headers: slot.put.headers,
      getUrl: slot.get.url,
      expires: slot.expires,
    };
    checkUploadSlot(upload, {
      origins: this.options.session.info?.mediaOrigins ?? [],
      allowInsecureLoopback: this.options.allowInsecureLoopback ?? false,
    });
    return upload;
  }

  /** Encrypts with a fresh key, obtains a slot, uploads; resolves with the `<media>` fields. */
  upload(
    local: BareJid,
    source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
    options: { kind: MediaKind; workDir: string; knownSize?: number },
  ): Promise<UploadedMedia> {
    return encryptAndUpload(source, {
      kind: options.kind,
      client: this.client,
      requestSlot: (kind, blobLength) => this.requestSlot(local, kind, blobLength),
      workDir: options.workDir,
      ...(options.knownSize === undefined ? {} : { knownSize: options.knownSize }),
    });
  }

  /** Downloads, verifies and decrypts a received `<media>` to `plaintextPath` (§14.4). */
  download(ref: MediaReference, plaintextPath: string): Promise<DecryptedMedia> {
    return downloadAndDecrypt(ref, { client: this.client, plaintextPath });
  }
}
