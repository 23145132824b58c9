import {
  matrixUserId,
  type BareJid,
  type DeviceId,
  type Jid,
  type MatrixUserId,
  type PhoneNumber,
} from "../../util/ids.js";
import { escapeBytes } from "../../util/byte-escape.js";
import { CodecError } from "./codec-error.js";
import { GATEKEEPER_DOMAIN, GROUP_DOMAIN } from "./namespaces.js";

/** A JID in canonical form (§5.1), split into its parts. */
export interface ParsedJid {
  readonly jid: Jid;
  readonly bare: BareJid;
  readonly local: string | undefined;
  readonly domain: string;
  readonly resource: string | undefined;
}

const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** RFC 7622 §3.3.1 forbids these in localparts; controls and spaces fail preparation. */
const LOCAL_FORBIDDEN = /["&'/:<>@\s\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const RESOURCE_FORBIDDEN = /[\p{Cc}\p{Cs}]/u;
const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

const invalid = (what: string, value: string, path: string): CodecError =>
  new CodecError(`non-canonical or invalid ${what} ${JSON.stringify(value.slice(0, 120))}`, {
    path,
  });

/**
 * Parses a JID and requires canonical form: lowercase domain, localpart unchanged by preparation
 * (approximated: NFC, no uppercase, no forbidden characters), each part at most 1023 bytes. A
 * non-canonical JID is `bad-request` (§5.1).
 */
export function parseJid(text: string, path: string): ParsedJid {
  const at = text.indexOf("@");
  const slash = text.indexOf("/");
  const hasLocal = at >= 0 && (slash < 0 || at < slash);
  const local = hasLocal ? text.slice(0, at) : undefined;
  const rest = hasLocal ? text.slice(at + 1) : text;
  const restSlash = rest.indexOf("/");
  const domain = restSlash >= 0 ? rest.slice(0, restSlash) : rest;
  const resource = restSlash >= 0 ? rest.slice(restSlash + 1) : undefined;

  if (!DOMAIN.test(domain) || domain.length > 1023) throw invalid("JID domain", text, path);
  if (local !== undefined) {
    if (
      local.length === 0 ||
      utf8Length(local) > 1023 ||
      LOCAL_FORBIDDEN.test(local) ||
      local !== local.normalize("NFC") ||
      local !== local.toLowerCase()
    ) {
      throw invalid("JID localpart", text, path);
    }
  }
  if (resource !== undefined) {
    if (
      resource.length === 0 ||
      utf8Length(resource) > 1023 ||
      RESOURCE_FORBIDDEN.test(resource) ||
      resource !== resource.normalize("NFC")
    ) {
      throw invalid("JID resource", text, path);
    }
  }
  const bare = (local === undefined ? domain : `${local}@${domain}`) as BareJid;
  return { jid: text as Jid, bare, local, domain, resource };
}

/** A bare JID (no resource). */
export function parseBareJid(text: string, path: string): BareJid {
  const jid = parseJid(text, path);
  if (jid.resource !== undefined) throw invalid("bare JID (has a resource)", text, path);
  return jid.bare;
}

/** A user's bare JID: localpart required, no resource. */
export function parseUserJid(text: string, path: string): BareJid {
  const jid = parseJid(text, path);
  if (jid.local === undefined || jid.resource !== undefined) {
    throw invalid("user JID", text, path);
  }
  if (jid.domain === GATEKEEPER_DOMAIN) checkGatekeeperLocal(jid.local, text, path);
  return jid.bare;
}

function checkGatekeeperLocal(local: string, text: string, path: string): void {
  if (!/^[1-9][0-9]{7,14}$/.test(local)) throw invalid("gatekeeper user JID", text, path);
}

/** `<digits>@wa.example`: the phone number's digits, no `+` (§5.1). */
export function parseGatekeeperUserJid(
  text: string,
  path: string,
  domain: string = GATEKEEPER_DOMAIN,
): BareJid {
  const jid = parseJid(text, path);
  if (jid.local === undefined || jid.resource !== undefined || jid.domain !== domain) {
    throw invalid("gatekeeper user JID", text, path);
  }
  checkGatekeeperLocal(jid.local, text, path);
  return jid.bare;
}

export function gatekeeperUserJid(phone: PhoneNumber, domain: string = GATEKEEPER_DOMAIN): BareJid {
  return `${phone.slice(1)}@${domain}` as BareJid;
}

/** The phone number of a gatekeeper user JID, or undefined for any other JID. */
export function phoneOfJid(
  jid: string,
  domain: string = GATEKEEPER_DOMAIN,
): PhoneNumber | undefined {
  const m = /^([1-9][0-9]{7,14})@(.+)$/.exec(jid);
  return m !== null && m[2] === domain ? (`+${m[1]}` as PhoneNumber) : undefined;
}

/** `<group-id>@g.wa.example`, group-id = 1-64 of `[a-z0-9-]` (§5.1). */
export function parseGroupJid(text: string, path: string, domain: string = GROUP_DOMAIN): BareJid {
  const m = /^([a-z0-9-]{1,64})@(.+)$/.exec(text);
  if (m === null || m[2] !== domain) throw invalid("group JID", text, path);
  return text as BareJid;
}

/** A device-addressed full JID: `<bare>/<deviceId>` with a canonical integer resource (§5.2). */
export function parseDeviceJid(
  text: string,
  path: string,
): { jid: Jid; bare: BareJid; device: DeviceId } {
  const jid = parseJid(text, path);
  if (jid.local === undefined || jid.resource === undefined)
    throw invalid("device JID", text, path);
  return { jid: jid.jid, bare: jid.bare, device: deviceOfResource(jid.resource, text, path) };
}

function deviceOfResource(resource: string, text: string, path: string): DeviceId {
  if (!/^[1-9][0-9]{0,9}$/.test(resource)) throw invalid("device resource", text, path);
  const id = Number(resource);
  if (id > 127) throw invalid("device resource (outside 1..127)", text, path);
  return id as DeviceId;
}

export const deviceJid = (bare: BareJid, device: DeviceId): Jid => `${bare}/${device}` as Jid;

export function bareOf(jid: string): BareJid {
  const slash = jid.indexOf("/");
  return (slash >= 0 ? jid.slice(0, slash) : jid) as BareJid;
}

// --- Matrix user id <-> provider localpart (§5.1) -----------------------------------------------

const KEEP = /^[a-z0-9._-]$/;

/**
 * `@alice:matrix.bridge.example` -> `alice=3amatrix.bridge.example`: the user id without `@`,
 * as UTF-8, every byte outside `[a-z0-9._-]` written `=` + two lowercase hex digits.
 */
export function localpartFromMatrixUserId(userId: MatrixUserId): string {
  return escapeBytes(userId.slice(1), KEEP);
}

/**
 * The reverse mapping. Only the canonical spelling decodes: an escape of a byte that needs none,
 * uppercase hex, a dangling `=`, invalid UTF-8 or a result that is no Matrix user id are errors, so
 * that two localparts can never name the same Matrix user.
 */
export function matrixUserIdFromLocalpart(localpart: string, path: string): MatrixUserId {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    const ch = localpart[i] as string;
    if (ch === "=") {
      const hex = localpart.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) throw invalid("escaped localpart", localpart, path);
      const byte = parseInt(hex, 16);
      if (KEEP.test(String.fromCharCode(byte))) {
        throw invalid("escaped localpart (needless escape)", localpart, path);
      }
      bytes.push(byte);
      i += 2;
    } else if (KEEP.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      throw invalid("escaped localpart", localpart, path);
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch (err) {
    throw new CodecError(`escaped localpart is not UTF-8: ${localpart}`, { path, cause: err });
  }
  try {
    return matrixUserId(`@${text}`);
  } catch (err) {
    throw new CodecError(`localpart does not name a Matrix user: ${localpart}`, {
      path,
      cause: err,
    });
  }
}
