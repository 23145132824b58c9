import { MatrixRefusedError } from "../core/matrix-api.js";

/**
 * Every event the bridge sends fits the spec's 64 KiB limit on a whole event (Synapse answers
 * 413 M_TOO_LARGE above it, and a send that can never succeed must not be retried). The limit is
 * on the signed PDU, so the content is held to CONTENT_LIMIT_BYTES: the rest is left for the
 * event's envelope (ids, hashes, signatures, prev and auth events). Encrypted rooms (#12) fit
 * the plaintext to a smaller limit, since Megolm grows it by about a third.
 *
 * What is given up, in order, until the content fits:
 *   1. `formatted_body` (and `format`): the plain `body` says the same;
 *   2. the end of `body`, replaced by a visible note "… [truncated: N more characters]".
 * Truncation, not splitting into parts: one remote message stays one Matrix event, so replies,
 * edits, reactions and deletions of it still map to one event. Anything still too large (a
 * content with no body to shorten) is refused as a permanent MatrixRefusedError.
 */
export const CONTENT_LIMIT_BYTES = 60_000;
/**
 * The plaintext limit in an encrypted room: Megolm encrypts {type, content, room_id} and sends
 * it base64-encoded (4/3 of its size) with the session's ids, so 44,000 bytes of content stay
 * within CONTENT_LIMIT_BYTES once encrypted.
 */
export const ENCRYPTED_CONTENT_LIMIT_BYTES = 44_000;

type Content = Record<string, unknown>;

export const contentBytes = (content: unknown): number =>
  Buffer.byteLength(JSON.stringify(content), "utf8");

/** `content` as it is sent: unchanged when it fits, else shortened as described above. */
export function fitContent(content: Content, limit = CONTENT_LIMIT_BYTES): Content {
  if (contentBytes(content) <= limit) return content;
  const plain = mapMessageParts(content, (part) => {
    const { formatted_body: _html, format: _format, ...rest } = part;
    return rest;
  });
  if (contentBytes(plain) <= limit) return plain;
  if (typeof plain["body"] !== "string") {
    throw new MatrixRefusedError("M_TOO_LARGE", 413, "the event is larger than 64 KiB");
  }
  // Shrink the body(s) proportionally until the whole content fits; JSON escaping makes the
  // byte count of a character vary, so measure rather than compute.
  let keep = [...(plain["body"] as string)].length;
  for (let round = 0; round < 40; round++) {
    const size = contentBytes(plain);
    keep = Math.max(0, Math.floor(keep * Math.min(0.97, limit / size)) - 64);
    const shorter = mapMessageParts(plain, (part) =>
      typeof part["body"] === "string" ? { ...part, body: truncated(part["body"], keep) } : part,
    );
    if (contentBytes(shorter) <= limit) return shorter;
    if (keep === 0) break;
  }
  throw new MatrixRefusedError("M_TOO_LARGE", 413, "the event is larger than 64 KiB");
}

/** Applies `f` to the content and to an edit's `m.new_content`. */
function mapMessageParts(content: Content, f: (part: Content) => Content): Content {
  const outer = f(content);
  const inner = content["m.new_content"];
  if (typeof inner === "object" && inner !== null && !Array.isArray(inner)) {
    outer["m.new_content"] = f(inner as Content);
  }
  return outer;
}

/** The first `keep` characters (code points) and a note saying how many were left out. */
function truncated(text: string, keep: number): string {
  const chars = [...text];
  if (chars.length <= keep) return text;
  return `${chars.slice(0, keep).join("")}… [truncated: ${chars.length - keep} more characters]`;
}
