import {
  encodeLookupResult,
  gatekeeperUserJid,
  phoneOfJid,
  type LookupResultItem,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { isPhoneNumber, type BareJid, type PhoneNumber } from "../../src/util/ids.js";
import type { EnlistedProvider } from "../config.js";
import type { GatekeeperContext } from "../context.js";
import { refuse, secondsUntil } from "../errors.js";
import { DAY_MS } from "../state/counters.js";
import type { KeyDirectory } from "./keys.js";

interface UserRow {
  jid: string;
  opted_in: number | boolean;
  allowed_providers: string | null;
}

/**
 * Reachability (§10.1) and discovery (§10.2). Unknown numbers, users who did not opt in or did
 * not allow the provider, and users without devices all look the same from outside.
 */
export class Reachability {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly keys: KeyDirectory,
  ) {}

  async isReachable(provider: EnlistedProvider, jid: BareJid): Promise<boolean> {
    const row = (await this.ctx.knex("gk_users").where({ jid }).first()) as UserRow | undefined;
    if (row === undefined || !row.opted_in) return false;
    if (row.allowed_providers !== null) {
      const allowed = JSON.parse(row.allowed_providers) as string[];
      if (!allowed.includes(provider.id)) return false;
    }
    return (await this.keys.devicesOf(jid)).length > 0;
  }

  async hasConversation(providerJid: BareJid, gkJid: BareJid): Promise<boolean> {
    const row = (await this.ctx
      .knex("gk_conversations")
      .where({ provider_jid: providerJid, gk_jid: gkJid })
      .first()) as unknown;
    return row !== undefined;
  }

  /**
   * Counts `phones` as lookups of `requester` against the distinct-number quotas (§10.2);
   * refuses the whole set with `rate-limited scope='lookup'` when a quota would be exceeded.
   */
  async countLookups(
    provider: EnlistedProvider,
    requester: BareJid,
    verified: boolean,
    phones: readonly PhoneNumber[],
  ): Promise<void> {
    const { counters, limits } = this.ctx;
    const now = this.ctx.now();
    const quotas = [
      {
        subject: `user|${provider.id}|${requester}`,
        limit: limits[verified ? "lookups-per-day" : "lookups-per-day-unverified"],
      },
      { subject: `provider|${provider.id}`, limit: limits["lookups-per-day-provider"] },
    ];
    const fresh: string[][] = [];
    for (const q of quotas) {
      const seen = await counters.items("lookup", q.subject, DAY_MS);
      const added = [...new Set(phones)].filter((p) => !seen.has(p));
      if (seen.size + added.length > q.limit) {
        const oldest = Math.min(...seen.values(), now);
        throw refuse(
          { name: "rate-limited", scope: "lookup", retryAfter: secondsUntil(oldest + DAY_MS, now) },
          `lookup quota of ${q.subject} used up`,
        );
      }
      fresh.push(added);
    }
    for (const [i, q] of quotas.entries()) {
      for (const phone of fresh[i] ?? []) await counters.record("lookup", q.subject, phone);
    }
  }

  /** Counts a lookup for a gatekeeper-user target without a conversation (§10.2 last bullet). */
  async countContact(
    provider: EnlistedProvider,
    requester: BareJid,
    verified: boolean,
    target: BareJid,
  ): Promise<void> {
    const phone = phoneOfJid(target, this.ctx.settings.domain);
    if (phone === undefined || (await this.hasConversation(requester, target))) return;
    await this.countLookups(provider, requester, verified, [phone]);
  }

  async lookup(
    provider: EnlistedProvider,
    requester: BareJid,
    verified: boolean,
    phones: readonly string[],
  ): Promise<XmlElement> {
    const valid = phones.filter(isPhoneNumber);
    await this.countLookups(provider, requester, verified, valid);
    const items: LookupResultItem[] = [];
    for (const phone of phones) {
      const jid = isPhoneNumber(phone)
        ? gatekeeperUserJid(phone, this.ctx.settings.domain)
        : undefined;
      if (jid !== undefined && (await this.isReachable(provider, jid))) {
        items.push({ phone, status: "reachable", jid });
      } else {
        items.push({ phone, status: "not-reachable" });
      }
    }
    return encodeLookupResult(items);
  }
}
