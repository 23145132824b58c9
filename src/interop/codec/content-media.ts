import { CodecError } from "./codec-error.js";
import { MEDIA_KINDS, type MediaKind } from "./media.js";
import { NS } from "./namespaces.js";
import {
  encodeBase64,
  formatBoolean,
  parseBase64,
  parseBase64Length,
  parseBoolean,
  parseInteger,
} from "./primitives.js";
import {
  attrPath,
  optionalChild,
  parsedAttr,
  pathOf,
  requiredAttr,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** The `<media>` content element (§13.2). */

interface MediaThumbnail {
  width: number | undefined;
  height: number | undefined;
  jpeg: Uint8Array;
}

export interface MediaContent {
  kind: MediaKind;
  url: string;
  /** MIME type claimed by the sender; never a reason alone to render inline. */
  type: string;
  size: number;
  sha256: Uint8Array;
  encSha256: Uint8Array;
  key: Uint8Array;
  width: number | undefined;
  height: number | undefined;
  duration: number | undefined;
  voice: boolean;
  filename: string | undefined;
  thumbnail: MediaThumbnail | undefined;
  /** 64 amplitudes, each 0-100. */
  waveform: Uint8Array | undefined;
}

const WAVEFORM_BYTES = 64;
const uint = (v: string, p: string): number => parseInteger(v, p);

export function encodeMedia(m: MediaContent): XmlElement {
  return xml(
    "media",
    {
      xmlns: NS.content,
      kind: m.kind,
      url: m.url,
      type: m.type,
      size: m.size,
      sha256: encodeBase64(m.sha256),
      "enc-sha256": encodeBase64(m.encSha256),
      key: encodeBase64(m.key),
      width: m.width,
      height: m.height,
      duration: m.duration,
      voice: m.voice ? formatBoolean(true) : undefined,
    },
    m.filename === undefined ? undefined : xml("filename", {}, m.filename),
    m.thumbnail === undefined
      ? undefined
      : xml(
          "thumbnail",
          { width: m.thumbnail.width, height: m.thumbnail.height },
          encodeBase64(m.thumbnail.jpeg),
        ),
    m.waveform === undefined ? undefined : xml("waveform", {}, encodeBase64(m.waveform)),
  );
}

/**
 * Decodes `<media>`. A missing attribute or child required for the kind, or any malformed value,
 * throws; the content decoder turns that into an unknown element (§7.5, §13.2).
 */
export function decodeMedia(el: XmlElement, maxThumbnailBytes: number): MediaContent {
  const kind = requiredEnumAttr(el, "kind", MEDIA_KINDS);
  const visual = kind === "image" || kind === "video";
  const timed = kind === "audio" || kind === "video";
  const dimension = (name: string): number | undefined =>
    visual ? requiredParsedAttr(el, name, uint) : parsedAttr(el, name, uint);
  const filenameEl = optionalChild(el, "filename", NS.content);
  if (kind === "document" && filenameEl === undefined) {
    throw new CodecError("document without <filename>", { path: pathOf(el) });
  }
  return {
    kind,
    url: mediaUrl(el),
    type: requiredAttr(el, "type"),
    size: requiredParsedAttr(el, "size", uint),
    sha256: requiredParsedAttr(el, "sha256", (v, p) => parseBase64Length(v, 32, p)),
    encSha256: requiredParsedAttr(el, "enc-sha256", (v, p) => parseBase64Length(v, 32, p)),
    key: requiredParsedAttr(el, "key", (v, p) => parseBase64Length(v, 32, p)),
    width: dimension("width"),
    height: dimension("height"),
    duration: timed ? requiredParsedAttr(el, "duration", uint) : parsedAttr(el, "duration", uint),
    voice: parsedAttr(el, "voice", parseBoolean) ?? false,
    filename: filenameEl === undefined ? undefined : textOf(filenameEl),
    thumbnail: thumbnail(optionalChild(el, "thumbnail", NS.content), maxThumbnailBytes),
    waveform: waveform(optionalChild(el, "waveform", NS.content)),
  };
}

function mediaUrl(el: XmlElement): string {
  const url = requiredAttr(el, "url");
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) {
    throw new CodecError("media url is not an http(s) URL", { path: attrPath(el, "url") });
  }
  return url;
}

function thumbnail(el: XmlElement | undefined, maxBytes: number): MediaThumbnail | undefined {
  if (el === undefined) return undefined;
  const jpeg = parseBase64(textOf(el), `${pathOf(el)}/text()`);
  if (jpeg.length === 0 || jpeg.length > maxBytes) {
    throw new CodecError(`thumbnail of ${jpeg.length} bytes (max ${maxBytes})`, {
      path: pathOf(el),
    });
  }
  return { width: parsedAttr(el, "width", uint), height: parsedAttr(el, "height", uint), jpeg };
}

function waveform(el: XmlElement | undefined): Uint8Array | undefined {
  if (el === undefined) return undefined;
  const path = `${pathOf(el)}/text()`;
  const bytes = parseBase64Length(textOf(el), WAVEFORM_BYTES, path);
  if (bytes.some((b) => b > 100)) throw new CodecError("waveform amplitude above 100", { path });
  return bytes;
}

/**
 * A file name safe to show or use: path components and characters of General Category Cc and Cf
 * removed (§13.2). Never empty.
 */
export function sanitizeFilename(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? "";
  const clean = base.replace(/[\p{Cc}\p{Cf}]/gu, "").trim();
  return clean === "" || clean === "." || clean === ".." ? "file" : clean;
}
