import type { BareJid } from "../../util/ids.js";
import { NS } from "./namespaces.js";
import { parseGatekeeperUserJid } from "./primitives.js";
import {
  childrenNamed,
  expect,
  fail,
  requiredAttr,
  requiredEnumAttr,
  requiredParsedAttr,
  textOf,
} from "./read.js";
import { xml, type XmlElement } from "./xml.js";

/** Reachability lookup (§10.2). */

const LOOKUP_STATUSES = ["reachable", "not-reachable"] as const;

/**
 * Numbers are kept as sent: a syntactically invalid number is not malformed but answered
 * `not-reachable` and not counted (§10.2).
 */
export interface LookupRequest {
  phones: string[];
}

export type LookupResultItem =
  { phone: string; status: "reachable"; jid: BareJid } | { phone: string; status: "not-reachable" };

export function encodeLookupRequest(r: LookupRequest): XmlElement {
  return xml(
    "lookup",
    { xmlns: NS.discovery },
    r.phones.map((p) => xml("phone", {}, p)),
  );
}

/** `maxBatch` is `max-lookup-batch`; more `<phone>` than that, or none, is `bad-request`. */
export function decodeLookupRequest(el: XmlElement, maxBatch?: number): LookupRequest {
  expect(el, "lookup", NS.discovery);
  const phones = childrenNamed(el, "phone", NS.discovery).map((p) => textOf(p).trim());
  if (phones.length === 0) fail(el, "lookup without <phone>");
  if (maxBatch !== undefined && phones.length > maxBatch) {
    fail(el, `lookup of ${phones.length} numbers exceeds max-lookup-batch ${maxBatch}`);
  }
  return { phones };
}

export function encodeLookupResult(items: readonly LookupResultItem[]): XmlElement {
  return xml(
    "lookup",
    { xmlns: NS.discovery },
    items.map((i) =>
      xml("result", {
        phone: i.phone,
        status: i.status,
        jid: i.status === "reachable" ? i.jid : undefined,
      }),
    ),
  );
}

export function decodeLookupResult(el: XmlElement): LookupResultItem[] {
  expect(el, "lookup", NS.discovery);
  return childrenNamed(el, "result", NS.discovery).map((r): LookupResultItem => {
    const phone = requiredAttr(r, "phone");
    const status = requiredEnumAttr(r, "status", LOOKUP_STATUSES);
    return status === "reachable"
      ? { phone, status, jid: requiredParsedAttr(r, "jid", parseGatekeeperUserJid) }
      : { phone, status };
  });
}
