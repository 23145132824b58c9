import { Readable } from "node:stream";
import type { MediaContent } from "../../src/interop/codec/index.js";
import { encryptAndUpload } from "../../src/interop/media/send.js";
import { MediaTransferClient } from "../../src/interop/media/transfer.js";
import type { MediaKind } from "../../src/interop/media/kinds.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid } from "../../src/util/ids.js";
import type { MediaStore } from "../media/store.js";

export interface MediaToSend {
  kind: MediaKind;
  data: Uint8Array;
  /** MIME type of the plaintext. */
  type: string;
  filename?: string;
  width?: number;
  height?: number;
  duration?: number;
  voice?: boolean;
  /** A JPEG preview carried inline (§13.2). */
  thumbnail?: { jpeg: Uint8Array; width?: number; height?: number };
  /** 64 amplitudes, 0-100, for voice notes. */
  waveform?: Uint8Array;
}

/**
 * A simulated user's media upload (§14): encrypted with a fresh key, a slot from the media store,
 * a PUT over loopback HTTP, and the `<media>` content that references the blob.
 */
export class UserMedia {
  private readonly client: MediaTransferClient;

  constructor(
    private readonly store: MediaStore | undefined,
    private readonly workDir: string,
    now: () => number,
  ) {
    this.client = new MediaTransferClient({
      policy: () => ({
        origins: store === undefined ? [] : [store.origin],
        limits: store?.limits.maxBytes ?? { image: 0, video: 0, audio: 0, document: 0 },
      }),
      allowInsecureLoopback: true,
      now: () => new Date(now()),
    });
  }

  async upload(owner: BareJid, m: MediaToSend): Promise<MediaContent> {
    const store = this.store;
    if (store === undefined)
      throw new BridgeError("no-media-store", "the simulator runs without media");
    const uploaded = await encryptAndUpload(Readable.from([Buffer.from(m.data)]), {
      kind: m.kind,
      client: this.client,
      workDir: this.workDir,
      knownSize: m.data.length,
      requestSlot: async (kind, size) => store.createSlot({ kind, size, owner }),
    });
    const visual = m.kind === "image" || m.kind === "video";
    const timed = m.kind === "audio" || m.kind === "video";
    return {
      kind: m.kind,
      url: uploaded.url,
      type: m.type,
      size: uploaded.size,
      sha256: new Uint8Array(uploaded.sha256),
      encSha256: new Uint8Array(uploaded.encSha256),
      key: new Uint8Array(uploaded.mediaKey),
      width: visual ? (m.width ?? 1) : undefined,
      height: visual ? (m.height ?? 1) : undefined,
      duration: timed ? (m.duration ?? 1) : undefined,
      voice: m.kind === "audio" && m.voice === true,
      filename: m.kind === "document" ? (m.filename ?? "file") : m.filename,
      thumbnail:
        m.thumbnail === undefined
          ? undefined
          : { jpeg: m.thumbnail.jpeg, width: m.thumbnail.width, height: m.thumbnail.height },
      waveform: m.waveform,
    };
  }
}
