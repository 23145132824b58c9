import type { NeutralMedia } from "../core/network.js";

/**
 * The media type a file from the network is posted to Matrix with, checked against its bytes.
 * The sender's claim is not trusted: a client (or a media repository serving `Content-Type`
 * from the event) that renders `text/html` or `image/svg+xml` inline would run the contact's
 * script in the user's origin. So:
 *   - active types (HTML, XHTML, SVG, XML, XSL, JavaScript), claimed or recognised in the bytes,
 *     go as `application/octet-stream` files (m.file, downloaded, never rendered);
 *   - an image whose bytes are another known image format is posted with that format's type;
 *   - an image whose bytes are no known image format goes as an octet-stream file too.
 * Other claims (video, audio, documents) are kept when the bytes are not active content.
 */
const SAFE_BINARY = "application/octet-stream";

const ACTIVE =
  /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/xml|application\/xml|text\/xsl|application\/xslt\+xml|application\/[\w.-]+\+xml|(text|application)\/(x-)?(java|ecma)script|text\/jscript|application\/x-shockwave-flash)$/;

const IMAGE_MAGIC: readonly [string, (b: Uint8Array) => boolean][] = [
  ["image/png", (b) => starts(b, [0x89, 0x50, 0x4e, 0x47])],
  ["image/jpeg", (b) => starts(b, [0xff, 0xd8, 0xff])],
  ["image/gif", (b) => ascii(b, 0, 4) === "GIF8"],
  ["image/webp", (b) => ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP"],
  ["image/bmp", (b) => ascii(b, 0, 2) === "BM"],
  ["image/heic", (b) => ascii(b, 4, 8) === "ftyp" && /^hei|^mif1|^msf1/.test(ascii(b, 8, 12))],
  ["image/avif", (b) => ascii(b, 4, 8) === "ftyp" && ascii(b, 8, 12) === "avif"],
];

const starts = (b: Uint8Array, magic: readonly number[]): boolean =>
  magic.every((byte, i) => b[i] === byte);
const ascii = (b: Uint8Array, from: number, to: number): string =>
  Buffer.from(b.subarray(from, to)).toString("latin1");

/** Whether the bytes open like markup or script a browser would render or run. */
function looksActive(data: Uint8Array): boolean {
  const head = Buffer.from(data.subarray(0, 512))
    .toString("utf8")
    .replace(/^\uFEFF/, "")
    .trimStart()
    .toLowerCase();
  return /^<(!doctype\s+html|html|head|body|script|svg|\?xml|iframe|object|embed)\b/.test(head);
}

const essence = (type: string): string => type.split(";")[0]?.trim().toLowerCase() ?? "";

/** The type to post `data` with, and whether it was demoted to an octet-stream file. */
function checkedMediaType(claimed: string, data: Uint8Array): { type: string; demoted: boolean } {
  const type = essence(claimed);
  if (ACTIVE.test(type) || looksActive(data)) return { type: SAFE_BINARY, demoted: true };
  if (type.startsWith("image/")) {
    const actual = IMAGE_MAGIC.find(([, test]) => test(data))?.[0];
    if (actual === undefined) return { type: SAFE_BINARY, demoted: true };
    return { type: actual, demoted: false };
  }
  return { type: type === "" ? SAFE_BINARY : type, demoted: false };
}

/** `media` with its type checked against `data`: demoted media becomes a plain document. */
export function withCheckedType(media: NeutralMedia, data: Uint8Array): NeutralMedia {
  const { type, demoted } = checkedMediaType(media.mimeType, data);
  const thumbnail =
    media.thumbnail === undefined
      ? undefined
      : checkedMediaType(media.thumbnail.mimeType, media.thumbnail.data);
  const safeThumb =
    media.thumbnail !== undefined && thumbnail !== undefined && !thumbnail.demoted
      ? { ...media.thumbnail, mimeType: thumbnail.type }
      : undefined;
  const { thumbnail: _dropped, ...rest } = media;
  if (!demoted) {
    return {
      ...rest,
      mimeType: type,
      ...(safeThumb === undefined ? {} : { thumbnail: safeThumb }),
    };
  }
  // Only what describes a download stays: no dimensions, duration or voice flag to render by.
  return {
    kind: "document",
    mimeType: SAFE_BINARY,
    size: media.size,
    ...(media.fileName === undefined ? {} : { fileName: media.fileName }),
    open: media.open,
  };
}
