import { classifyBounce } from "../codec/errors.js";
import { xml, type XmlElement } from "../codec/xml.js";
import { IqError, IqTimeoutError } from "../transport/errors.js";
import type { IqCaller } from "../transport/iq.js";
import { GatekeeperError, ProviderError } from "./errors.js";
import { stanzaErrorOf, type HelloSession } from "./session.js";
import type { EngineTiming } from "./types.js";

interface GatekeeperIqOptions {
  readonly iq: IqCaller;
  readonly session: HelloSession;
  readonly gatekeeperDomain: string;
  readonly timing: EngineTiming;
  readonly now: () => number;
}

/**
 * IQs of provider users to the gatekeeper (§9-§11, §14, §16): waits for hello, answers
 * `hello-required` with a hello and one new attempt, turns a peer-offline bounce into the
 * session's backoff, and every other error into a GatekeeperError carrying the §18 condition.
 */
export class GatekeeperIq {
  constructor(private readonly options: GatekeeperIqOptions) {}

  /**
   * Sends `<iq type from=user to=wa.example>` (or to `to`: the group service and group JIDs,
   * §17.1) and returns the result's payload, if any.
   */
  async request(
    from: string,
    type: "get" | "set",
    payload: XmlElement,
    what: string,
    to: string = this.options.gatekeeperDomain,
  ): Promise<XmlElement | undefined> {
    const { session, timing } = this.options;
    for (let attempt = 0; ; attempt++) {
      await session.whenReady(timing.iqTimeoutMs);
      // A fresh element (and so a fresh id) per attempt: E25 says the gatekeeper does not cache
      // hello-required answers, but a fresh id does not depend on it, and no payload is ever
      // re-sent changed under an old id (E28).
      const iq = xml("iq", { type, from, to }, payload);
      try {
        const response = await this.options.iq.request(iq, { timeoutMs: timing.iqTimeoutMs });
        return response.children.find((c): c is XmlElement => typeof c !== "string");
      } catch (err) {
        if (err instanceof IqTimeoutError) {
          session.peerOffline(`${what}: no answer`);
          throw new ProviderError("not-ready", `${what}: the gatekeeper did not answer`, {
            cause: err,
          });
        }
        if (!(err instanceof IqError)) throw err;
        const error = stanzaErrorOf(err);
        if (error === undefined) throw err;
        const outcome = classifyBounce(
          error,
          String(err.response.attrs.from ?? ""),
          this.options.gatekeeperDomain,
        );
        if (outcome.kind === "hello-required" && attempt === 0) {
          session.requestHello(`${what} answered hello-required`);
          continue;
        }
        if (outcome.kind === "peer-offline") {
          session.peerOffline(`${what} bounced: gatekeeper offline`);
          throw new ProviderError("not-ready", `${what}: the gatekeeper is offline`, {
            cause: err,
          });
        }
        throw new GatekeeperError(what, error, this.options.now(), err);
      }
    }
  }
}
