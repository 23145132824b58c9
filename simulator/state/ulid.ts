import { randomBytes } from "node:crypto";
import type { StanzaId } from "../../src/util/ids.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID: 48 bits of time and 80 random bits in Crockford base32 (26 characters), so stanza-ids
 * carry far more than the 64 random bits §2 asks for and sort by creation time in logs.
 */
export function newStanzaId(now: number): StanzaId {
  let time = "";
  let t = Math.max(0, Math.floor(now));
  for (let i = 0; i < 10; i++) {
    time = (CROCKFORD[t % 32] as string) + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let random = "";
  for (let i = 0; i < 16; i++) {
    random = (CROCKFORD[Number(bits & 31n)] as string) + random;
    bits >>= 5n;
  }
  return (time + random) as StanzaId;
}
