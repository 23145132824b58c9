/** Text helpers shared by both directions of the conversion. */

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

// XML 1.0 cannot carry C0 controls other than tab, LF and CR, U+FFFE/U+FFFF or lone surrogates:
// an element holding one would not serialize into a parseable envelope.
const NOT_XML = new RegExp(
  "[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]" +
    "|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]",
  "g",
);

/** Outgoing text as §2 wants it (NFC) and as XML can carry it. */
export const wireText = (s: string): string => s.replace(NOT_XML, "").normalize("NFC");

/** At most `max` code points, with an ellipsis when cut. */
export function truncateChars(s: string, max: number): string {
  const points = [...s];
  return points.length <= max ? s : `${points.slice(0, Math.max(0, max - 1)).join("")}…`;
}

/** The first non-empty line, for one-line previews (quotes, notices). */
export function firstLine(s: string): string {
  return (
    s
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}
