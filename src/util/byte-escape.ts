/**
 * Escapes text for a Matrix or XMPP localpart: the text as UTF-8, each byte whose character
 * `keep` accepts as is, every other byte as `=` and two lowercase hex digits. With `=` outside
 * `keep` the escape is reversible, so two texts never share one escaped form. The provider's
 * localparts (interop codec/jid.ts, §5.1) and the ghosts of network ids without an address
 * (core/ghosts.ts) use it with their own sets.
 */
export function escapeBytes(text: string, keep: RegExp): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const ch = String.fromCharCode(byte);
    out += keep.test(ch) ? ch : `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}
