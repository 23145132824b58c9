import type { BareJid, PhoneNumber } from "../../util/ids.js";
import { decodeBlockList, encodeBlockList, encodeReport, type Report } from "../codec/abuse.js";
import {
  decodeLookupResult,
  encodeLookupRequest,
  type LookupResultItem,
} from "../codec/discovery.js";
import {
  decodeBinding,
  decodeBound,
  decodeCodeSent,
  encodeBinding,
  encodeConfirmCode,
  encodeProfile,
  encodeRequestCode,
  encodeUnbind,
  type Bound,
  type CodeSent,
  type VerificationChannel,
} from "../codec/identity.js";
import type { Limits } from "../codec/limits.js";
import type { XmlElement } from "../codec/xml.js";
import type { GatekeeperIq } from "./iq-client.js";

/**
 * The IQs a provider user makes about itself and its contacts: phone verification, binding and
 * handle (§9), discovery (§10.2), block list and reports (§16). Each rejects with a
 * GatekeeperError carrying the §18 condition (e.g. `code-invalid` with `attemptsLeft`,
 * `rate-limited` with `retryAt`), or `not-ready` while there is no hello.
 */
export class AccountService {
  constructor(
    private readonly gk: GatekeeperIq,
    /** The limits of the latest hello (§8.3). */
    private readonly limits: () => Limits,
  ) {}

  async requestCode(
    local: BareJid,
    phone: PhoneNumber,
    options: { channel?: VerificationChannel; lang?: string } = {},
  ): Promise<CodeSent> {
    const payload = await this.gk.request(
      local,
      "set",
      encodeRequestCode({ phone, channel: options.channel ?? "sms", lang: options.lang }),
      "request-code",
    );
    return decodeCodeSent(required(payload, "request-code"));
  }

  async confirmCode(local: BareJid, phone: PhoneNumber, code: string): Promise<Bound> {
    const payload = await this.gk.request(
      local,
      "set",
      encodeConfirmCode({ phone, code }),
      "confirm-code",
    );
    return decodeBound(required(payload, "confirm-code"));
  }

  /** The bound number, or undefined when the user is unverified. */
  async binding(local: BareJid): Promise<PhoneNumber | undefined> {
    const payload = await this.gk.request(local, "get", encodeBinding(), "binding query");
    return decodeBinding(required(payload, "binding query")).phone;
  }

  async unbind(local: BareJid): Promise<void> {
    await this.gk.request(local, "set", encodeUnbind(), "unbind");
  }

  async setHandle(local: BareJid, handle: string | undefined): Promise<void> {
    await this.gk.request(local, "set", encodeProfile({ handle }), "profile");
  }

  /** Looks numbers up in batches of at most `max-lookup-batch` (§10.2), results in order. */
  async lookup(local: BareJid, phones: readonly string[]): Promise<LookupResultItem[]> {
    const batch = Math.max(1, this.limits()["max-lookup-batch"]);
    const results: LookupResultItem[] = [];
    for (let i = 0; i < phones.length; i += batch) {
      const payload = await this.gk.request(
        local,
        "get",
        encodeLookupRequest({ phones: phones.slice(i, i + batch) }),
        "lookup",
      );
      results.push(...decodeLookupResult(required(payload, "lookup")));
    }
    return results;
  }

  async blocklist(local: BareJid): Promise<BareJid[]> {
    const payload = await this.gk.request(local, "get", encodeBlockList("blocklist"), "blocklist");
    return decodeBlockList(required(payload, "blocklist"), "blocklist");
  }

  async block(local: BareJid, jids: readonly BareJid[]): Promise<void> {
    await this.gk.request(local, "set", encodeBlockList("block", jids), "block");
  }

  /** Without `jids` the whole list is cleared (§16.1). */
  async unblock(local: BareJid, jids: readonly BareJid[] = []): Promise<void> {
    await this.gk.request(local, "set", encodeBlockList("unblock", jids), "unblock");
  }

  async report(local: BareJid, report: Report): Promise<void> {
    await this.gk.request(local, "set", encodeReport(report), "report");
  }
}

function required(payload: XmlElement | undefined, what: string): XmlElement {
  if (payload === undefined) throw new Error(`${what}: the result carries no payload`);
  return payload;
}
