import { encodeBlockList, type Report } from "../../../src/interop/codec/abuse.js";
import { encodeLookupResult } from "../../../src/interop/codec/discovery.js";
import { interopError, type StanzaError } from "../../../src/interop/codec/errors.js";
import { encodeBinding, encodeBound, encodeCodeSent } from "../../../src/interop/codec/identity.js";
import type { IqRequest } from "../../../src/interop/codec/iq-requests.js";
import { encodeSlot } from "../../../src/interop/codec/media.js";
import type { XmlElement } from "../../../src/interop/codec/xml.js";
import type { BareJid, PhoneNumber } from "../../../src/util/ids.js";
import type { FakeDirectory } from "./fake-directory.js";

export const GOOD_CODE = "123456";

/**
 * The scripted gatekeeper's identity, discovery, abuse and media services (§9, §10.2, §14.1,
 * §16), reduced to what the engine's tests observe.
 */
export class FakeAccounts {
  readonly bindings = new Map<string, PhoneNumber>();
  readonly blocks = new Map<string, Set<BareJid>>();
  readonly reports: { user: string; report: Report }[] = [];
  readonly unbinds: string[] = [];
  /** Origin of the URLs in issued upload slots. */
  slotOrigin = "https://media.wa.example";
  private attempts = 5;

  constructor(private readonly directory: FakeDirectory) {}

  /** The answer to an account IQ, or undefined if the request is not one of these. */
  answer(
    user: BareJid,
    request: IqRequest,
  ): { payload?: XmlElement | undefined } | { error: StanzaError } | undefined {
    switch (request.kind) {
      case "request-code":
        return {
          payload: encodeCodeSent({
            phone: request.request.phone,
            length: 6,
            expires: new Date(Date.now() + 600_000),
            resendAfter: 60,
          }),
        };
      case "confirm-code":
        if (request.confirm.code !== GOOD_CODE) {
          this.attempts -= 1;
          return { error: interopError({ name: "code-invalid", attemptsLeft: this.attempts }) };
        }
        this.bindings.set(user, request.confirm.phone);
        return { payload: encodeBound({ phone: request.confirm.phone, jid: user }) };
      case "binding":
        return { payload: encodeBinding(this.bindings.get(user)) };
      case "unbind":
        this.bindings.delete(user);
        this.unbinds.push(user);
        return {};
      case "profile":
        return {};
      case "lookup":
        return {
          payload: encodeLookupResult(
            request.lookup.phones.map((phone) => {
              const jid = `${phone.slice(1)}@wa.example` as BareJid;
              const list = this.directory.list(jid);
              return list !== undefined && list.devices.length > 0
                ? { phone, status: "reachable" as const, jid }
                : { phone, status: "not-reachable" as const };
            }),
          ),
        };
      case "blocklist":
        return { payload: encodeBlockList("blocklist", [...(this.blocks.get(user) ?? [])]) };
      case "block": {
        const set = this.blocks.get(user) ?? new Set();
        for (const jid of request.jids) set.add(jid);
        this.blocks.set(user, set);
        return {};
      }
      case "unblock": {
        const set = this.blocks.get(user);
        if (request.jids.length === 0) set?.clear();
        else for (const jid of request.jids) set?.delete(jid);
        return {};
      }
      case "report":
        this.reports.push({ user, report: request.report });
        return {};
      case "media-slot":
        return {
          payload: encodeSlot({
            expires: new Date(Date.now() + 600_000),
            put: {
              url: `${this.slotOrigin}/up/abc`,
              headers: [{ name: "Authorization", value: "Bearer t" }],
            },
            get: { url: `${this.slotOrigin}/b/abc` },
          }),
        };
      default:
        return undefined;
    }
  }
}
