import type { NeutralMedia, NeutralText } from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import { hasFormatting, neutralToHtml, neutralToPlain } from "./html-render.js";
import type { EncryptedFile, MediaContent, MediaInfo } from "./types.js";
import { waveformToMatrix } from "./waveform.js";
import { fileNameFor } from "../../util/media-files.js";

/**
 * Where the caller uploaded an attachment (and its thumbnail): a plain mxc URI in unencrypted
 * rooms, the encrypted-file object in encrypted ones. Exactly one of `url` and `file` is expected.
 */
export interface UploadedMedia {
  url?: string;
  file?: EncryptedFile;
  thumbnail?: {
    url?: string;
    file?: EncryptedFile;
    mimeType: string;
    size?: number;
    width: number;
    height: number;
  };
}

const MSGTYPES = {
  image: "m.image",
  video: "m.video",
  audio: "m.audio",
  document: "m.file",
} as const;

/** A name for media the network sent without one, since Matrix clients show `body` as the name. */
export function defaultFileName(media: NeutralMedia): string {
  const base =
    media.voice === true ? "Voice message" : media.kind === "document" ? "file" : media.kind;
  return fileNameFor(base, media.mimeType);
}

/**
 * A media message for the ghost to send. `filename` is always set, so by the spec's caption rule
 * `body` is read as a caption exactly when one was given. Durations go out in milliseconds.
 * Throws BridgeError `media-not-uploaded` when `uploaded` names no location: that is the caller's
 * contract, not user input.
 */
export function mediaToMatrix(
  media: NeutralMedia,
  caption: NeutralText | undefined,
  uploaded: UploadedMedia,
): MediaContent {
  if (uploaded.url === undefined && uploaded.file === undefined) {
    throw new BridgeError("media-not-uploaded", `no mxc URI given for the ${media.kind} to send`);
  }
  const fileName = media.fileName ?? defaultFileName(media);
  const info: MediaInfo = { mimetype: media.mimeType };
  if (media.size > 0) info.size = media.size;
  if (media.kind === "image" || media.kind === "video") {
    if (media.width !== undefined) info.w = media.width;
    if (media.height !== undefined) info.h = media.height;
  }
  const durationMs =
    media.durationSeconds === undefined ? undefined : Math.round(media.durationSeconds * 1000);
  if (durationMs !== undefined && (media.kind === "audio" || media.kind === "video")) {
    info.duration = durationMs;
  }
  const thumb = uploaded.thumbnail;
  if (thumb !== undefined && (thumb.url !== undefined || thumb.file !== undefined)) {
    if (thumb.file !== undefined) info.thumbnail_file = thumb.file;
    else info.thumbnail_url = thumb.url;
    info.thumbnail_info = { mimetype: thumb.mimeType, w: thumb.width, h: thumb.height };
    if (thumb.size !== undefined) info.thumbnail_info.size = thumb.size;
  }

  const content: MediaContent = {
    msgtype: MSGTYPES[media.kind],
    body: fileName,
    filename: fileName,
    info,
  };
  if (uploaded.file !== undefined) content.file = uploaded.file;
  else content.url = uploaded.url;
  if (caption !== undefined && caption.text.trim() !== "") {
    content.body = neutralToPlain(caption);
    if (hasFormatting(caption)) {
      content.format = "org.matrix.custom.html";
      content.formatted_body = neutralToHtml(caption);
    }
  }
  if (media.kind === "audio" && media.voice === true) {
    content["org.matrix.msc3245.voice"] = {};
    content["org.matrix.msc1767.audio"] = {
      duration: durationMs ?? 0,
      ...(media.waveform === undefined ? {} : { waveform: waveformToMatrix(media.waveform) }),
    };
  }
  return content;
}
