import { MatrixError } from "../errors.js";
import { newOpaqueId } from "../events.js";

export interface MediaItem {
  mediaId: string;
  data: Buffer;
  contentType: string;
  fileName?: string;
  uploader: string;
  createdAt: number;
}

/** Uploaded content kept in memory, addressed by `mxc://{serverName}/{mediaId}`. */
export class MediaStore {
  private readonly items = new Map<string, MediaItem>();

  constructor(
    readonly serverName: string,
    readonly maxUploadBytes: number,
  ) {}

  put(data: Buffer, contentType: string, uploader: string, fileName?: string): string {
    if (data.length > this.maxUploadBytes) {
      throw new MatrixError(
        413,
        "M_TOO_LARGE",
        `Upload of ${data.length} bytes exceeds ${this.maxUploadBytes}`,
      );
    }
    const mediaId = newOpaqueId(24);
    const item: MediaItem = { mediaId, data, contentType, uploader, createdAt: Date.now() };
    if (fileName !== undefined) item.fileName = fileName;
    this.items.set(mediaId, item);
    return `mxc://${this.serverName}/${mediaId}`;
  }

  /** Every stored item (for the tests' inspection of what the server holds). */
  all(): MediaItem[] {
    return [...this.items.values()];
  }

  /** Remote media is never fetched: this server has no federation. */
  get(serverName: string, mediaId: string): MediaItem {
    const item = serverName === this.serverName ? this.items.get(mediaId) : undefined;
    if (item === undefined)
      throw new MatrixError(404, "M_NOT_FOUND", `No media mxc://${serverName}/${mediaId}`);
    return item;
  }
}
