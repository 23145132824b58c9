import { InvalidBundleError } from "./errors.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict RFC 4648 §4 base64 with padding (§2). XML whitespace is ignored, anything else invalid is
 * refused: Node's decoder would silently skip it and hand libsignal a shorter key.
 */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const compact = text.replace(/[ \t\r\n]/g, "");
  if (!BASE64.test(compact)) throw new InvalidBundleError("invalid base64");
  const buf = Buffer.from(compact, "base64");
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
