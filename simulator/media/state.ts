import type { MediaKind, MediaLimits } from "../../src/interop/media/kinds.js";

/** Numbers the store enforces; defaults are those of §8.3. */
export interface MediaStoreLimits {
  /** Maximum encrypted blob size per kind. */
  readonly maxBytes: MediaLimits;
  /** `media-retention-seconds`: blob lifetime after upload. */
  readonly retentionSeconds: number;
  /** Slot validity; never below `min-slot-seconds`. */
  readonly slotSeconds: number;
  /** `uploads-per-hour`: slots per owner per sliding hour. */
  readonly uploadsPerHour: number;
}

/**
 * One slot and, once uploaded, its blob. States: `open` (slot issued), `uploading` (a PUT is
 * streaming), `stored` (blob on disk), `gone` (blob removed after retention). A slot that expired
 * unused stays `open` with `slotExpires` in the past, so that a late PUT is answered 410.
 */
export interface BlobEntry {
  readonly id: string;
  readonly kind: MediaKind;
  readonly size: number;
  readonly owner: string;
  readonly token: string;
  readonly slotExpires: number;
  state: "open" | "uploading" | "stored" | "gone";
  uploadedAt?: number;
}

/** What the HTTP handlers need from the store. */
export interface StoreContext {
  readonly entries: ReadonlyMap<string, BlobEntry>;
  readonly limits: () => MediaStoreLimits;
  readonly now: () => number;
  readonly blobPath: (id: string) => string;
  readonly partPath: (id: string) => string;
}

/** Whether a stored blob is past its retention at `now` (ms). */
export function isExpired(entry: BlobEntry, retentionSeconds: number, now: number): boolean {
  return entry.uploadedAt !== undefined && now >= entry.uploadedAt + retentionSeconds * 1000;
}
