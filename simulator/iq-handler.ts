import {
  decodeIq,
  decodeIqRequest,
  encodeDeviceList,
  encodeBundlesResult,
  encodeIqError,
  encodeIqResult,
  encodePreKeyCounts,
  encodeGroupInfo,
  encodeSlot,
  FEATURE,
  parseGroupJid,
  errorForCodecError,
  interopError,
  parseJid,
  parseXml,
  CodecError,
  type IqHeader,
  type IqRequest,
  type StanzaError,
  type XmlElement,
} from "../src/interop/codec/index.js";
import type { BareJid } from "../src/util/ids.js";
import type { EnlistedProvider } from "./config.js";
import { domainOf, providerByDomain, type GatekeeperContext } from "./context.js";
import { Refusal, refuse, refuseStandard, secondsUntil } from "./errors.js";
import type { Services } from "./services.js";
import { Counters, HOUR_MS } from "./state/counters.js";
import { SlotRefusedError } from "./media/store.js";
import type { GroupManagement } from "./groups/management.js";

/** Payloads whose refusal depends on state that a hello changes: never answered from the cache. */
const UNCACHED = new Set(["hello-required", "not-enlisted"]);

/**
 * Answers provider IQs (§8-§16): enlisted domain, hello state, the response cache per
 * (from, id) of §8.4, unknown payloads with `service-unavailable` (§7.4), then the services.
 */
export class IqHandler {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly s: Services,
    private readonly groups: GroupManagement,
  ) {}

  async handle(stanza: XmlElement): Promise<void> {
    const type = attr(stanza, "type");
    const id = attr(stanza, "id");
    const from = attr(stanza, "from");
    if (type === "result" || type === "error" || id === undefined || from === undefined) return;
    const header: IqHeader = {
      type: type === "set" ? "set" : "get",
      id,
      from,
      to: attr(stanza, "to"),
    };
    const provider = providerByDomain(this.ctx, domainOf(from));
    if (provider === undefined) {
      const hello = stanza.children.some((c) => typeof c !== "string" && c.name === "hello");
      this.reply(
        encodeIqError(
          header,
          hello
            ? interopError({ name: "not-enlisted" })
            : { type: "auth", condition: "not-authorized" },
        ),
      );
      return;
    }
    const cached = (await this.ctx
      .knex("gk_iq_cache")
      .where({ from_jid: from, iq_id: id })
      .andWhere("expires_at", ">", this.ctx.now())
      .first()) as { response: string } | undefined;
    if (cached !== undefined) {
      this.reply(parseXml(cached.response));
      return;
    }
    let response: XmlElement;
    let cache = true;
    try {
      response = await this.answer(stanza, header, provider);
    } catch (err) {
      const error = toStanzaError(err);
      if (error === undefined) throw err;
      if (error.app !== undefined && UNCACHED.has(error.app.name)) cache = false;
      response = encodeIqError(header, error);
    }
    if (cache) {
      await this.ctx
        .knex("gk_iq_cache")
        .insert({
          from_jid: from,
          iq_id: id,
          response: response.toString(),
          expires_at: this.ctx.now() + this.ctx.limits["iq-cache-seconds"] * 1000,
        })
        .onConflict(["from_jid", "iq_id"])
        .merge();
    }
    this.reply(response);
    if (attr(response, "type") === "result" && isHello(stanza)) {
      await this.s.queue.redeliverAll(provider.domain);
    }
  }

  private async answer(
    stanza: XmlElement,
    header: IqHeader,
    provider: EnlistedProvider,
  ): Promise<XmlElement> {
    const iq = decodeIq(stanza);
    const request = decodeIqRequest(iq, { maxLookupBatch: this.ctx.limits["max-lookup-batch"] });
    if (request.kind === "hello") {
      return encodeIqResult(header, await this.s.hello.handle(provider, request.hello));
    }
    if (!this.s.hello.hasState(provider.domain)) {
      throw refuse({ name: "hello-required" }, `no hello state for ${provider.domain}`);
    }
    if (request.kind === "ping") return encodeIqResult(header);
    if (request.kind === "group-create" || request.kind === "group") {
      return encodeIqResult(header, await this.group(provider, header, request));
    }
    if (request.kind === "unknown" || header.to !== this.ctx.settings.domain) {
      throw refuseStandard("service-unavailable", "cancel", `no service for ${request.kind}`);
    }
    const from = parseJid(header.from ?? "", "/iq/@from");
    if (from.local === undefined) {
      throw refuseStandard("bad-request", "modify", "user IQ from a domain JID");
    }
    const payload = await this.service(provider, from.bare, request);
    return encodeIqResult(header, payload);
  }

  private async service(
    p: EnlistedProvider,
    jid: BareJid,
    r: IqRequest,
  ): Promise<XmlElement | undefined> {
    const s = this.s;
    switch (r.kind) {
      case "request-code":
        return s.identity.requestCode(p, jid, r.request);
      case "confirm-code":
        return s.identity.confirmCode(p, jid, r.confirm);
      case "binding":
        return s.identity.binding(p, jid);
      case "unbind":
        await s.identity.unbind(p, jid);
        return undefined;
      case "profile":
        await s.identity.profile(p, jid, r.handle);
        return undefined;
      case "lookup":
        return s.reach.lookup(p, jid, await s.identity.isVerified(p, jid), r.lookup.phones);
      case "publish-bundle":
        await s.keys.publishBundle(jid, r.bundle);
        return undefined;
      case "publish-devices": {
        const version = await s.keys.publishDevices(jid, r.devices);
        return encodeDeviceList({ jid, version, devices: [] });
      }
      case "fetch-devices": {
        await this.authorizeFetch(p, jid, r.jid);
        const list = (await s.keys.deviceList(r.jid)) ?? { version: 0, devices: [] };
        return encodeDeviceList({ jid: r.jid, ...list });
      }
      case "fetch-bundles": {
        await this.authorizeFetch(p, jid, r.jid);
        await this.countKeyFetches(jid, r.jid, r.devices);
        return encodeBundlesResult(r.jid, await s.keys.fetchBundles(r.jid, r.devices));
      }
      case "upload-prekeys":
        return encodePreKeyCounts({
          device: r.device,
          ...(await s.keys.uploadPreKeys(jid, r.device, r.keys)),
        });
      case "count-prekeys":
        return encodePreKeyCounts({ device: r.device, ...(await s.keys.counts(jid, r.device)) });
      case "rotate":
        await s.keys.rotate(jid, r.rotation);
        return undefined;
      case "media-slot":
        return this.slot(jid, r.request.kind, r.request.size);
      case "blocklist":
        return s.abuse.blocklist(jid);
      case "block":
        await s.abuse.block(jid, r.jids);
        return undefined;
      case "unblock":
        await s.abuse.unblock(jid, r.jids);
        return undefined;
      case "report":
        await s.abuse.report(jid, r.report);
        return undefined;
      default:
        throw refuseStandard("service-unavailable", "cancel", `${r.kind} is not simulated`);
    }
  }

  /**
   * §17.1: create goes to the group domain, everything else to a group JID; a provider that did
   * not negotiate groups is answered as for any payload it has no service for (§7).
   */
  private async group(
    provider: EnlistedProvider,
    header: IqHeader,
    request: Extract<IqRequest, { kind: "group-create" | "group" }>,
  ): Promise<XmlElement> {
    const groupDomain = this.ctx.settings.groupDomain;
    const to = header.to ?? "";
    const negotiated = this.s.hello.features(provider.domain).has(FEATURE.groups);
    const addressed =
      request.kind === "group-create" ? to === groupDomain : domainOf(to) === groupDomain;
    if (!negotiated || !addressed) {
      throw refuseStandard("service-unavailable", "cancel", `no group service at ${to}`);
    }
    const from = parseJid(header.from ?? "", "/iq/@from");
    if (from.local === undefined) {
      throw refuseStandard("bad-request", "modify", "group IQ from a domain JID");
    }
    const requester = { jid: from.bare, provider };
    if (request.kind === "group-create") {
      return encodeGroupInfo(
        await this.groups.create(requester, request.subject, request.participants),
      );
    }
    const group = parseGroupJid(to, "/iq/@to", groupDomain);
    if (request.request.op === "info" && header.type !== "get") {
      throw refuseStandard("bad-request", "modify", "info is a get");
    }
    if (request.request.op !== "info" && header.type !== "set") {
      throw refuseStandard("bad-request", "modify", `${request.request.op} is a set`);
    }
    return encodeGroupInfo(await this.groups.modify(requester, group, request.request));
  }

  /**
   * §11: fetches need the target to be reachable (or be the requester itself); a fetch of a
   * gatekeeper user without a conversation first counts as a lookup (§10.2).
   */
  private async authorizeFetch(p: EnlistedProvider, requester: BareJid, target: BareJid) {
    if (target === requester) return;
    // §17.3: co-members fetch each other's keys, whatever their domains; a shared group is a
    // conversation, so it is not a lookup (§10.2).
    if (await this.groups.shareGroup(requester, target)) {
      await this.s.keys.watch(requester, target);
      return;
    }
    if (domainOf(target) === this.ctx.settings.domain) {
      const verified = await this.s.identity.isVerified(p, requester);
      await this.s.reach.countContact(p, requester, verified, target);
      if (await this.s.reach.isReachable(p, target)) {
        await this.s.keys.watch(requester, target);
        return;
      }
    }
    throw refuse({ name: "not-reachable" }, `${target} is not reachable for ${requester}`);
  }

  private async countKeyFetches(requester: BareJid, target: BareJid, devices: readonly number[]) {
    const ids = devices.length > 0 ? devices : await this.s.keys.devicesOf(target);
    const limit = this.ctx.limits["key-fetches-per-hour"];
    const now = this.ctx.now();
    for (const device of ids) {
      const times = await this.ctx.counters.times(
        "key-fetch",
        `${requester}>${target}/${device}`,
        HOUR_MS,
      );
      const free = Counters.freeAt(times, limit, 1, HOUR_MS);
      if (free !== undefined) {
        throw refuse(
          { name: "rate-limited", scope: "key-fetch", retryAfter: secondsUntil(free, now) },
          `key fetches of ${target}/${device} by ${requester} used up`,
        );
      }
    }
    for (const device of ids) {
      await this.ctx.counters.record("key-fetch", `${requester}>${target}/${device}`);
    }
  }

  private slot(owner: BareJid, kind: string, size: number): XmlElement {
    const media = this.s.media;
    if (media === undefined)
      throw refuseStandard("service-unavailable", "cancel", "no media store");
    try {
      const slot = media.createSlot({ kind, size, owner });
      return encodeSlot({
        expires: slot.expires,
        put: {
          url: slot.putUrl,
          headers: slot.headers.map((h) => ({ name: "Authorization" as const, value: h.value })),
        },
        get: { url: slot.getUrl },
      });
    } catch (err) {
      if (!(err instanceof SlotRefusedError)) throw err;
      if (err.refusal === "too-large") {
        throw refuse({ name: "too-large", max: err.details.max ?? 0 }, err.message, {
          condition: "not-acceptable",
        });
      }
      if (err.refusal === "rate-limited") {
        throw refuse(
          { name: "rate-limited", scope: "upload", retryAfter: err.details.retryAfterSeconds ?? 1 },
          err.message,
        );
      }
      throw refuseStandard("bad-request", "modify", err.message);
    }
  }

  private reply(stanza: XmlElement): void {
    try {
      this.ctx.send(stanza);
    } catch (err) {
      this.ctx.log.debug({ err: String(err) }, "IQ response not sent");
    }
  }
}

export function toStanzaError(err: unknown): StanzaError | undefined {
  if (err instanceof Refusal) return err.error;
  if (err instanceof CodecError) return errorForCodecError(err);
  return undefined;
}

function isHello(stanza: XmlElement): boolean {
  return stanza.children.some((c) => typeof c !== "string" && c.name === "hello");
}

export function attr(el: XmlElement, name: string): string | undefined {
  const v = el.attrs[name];
  return typeof v === "string" ? v : undefined;
}
