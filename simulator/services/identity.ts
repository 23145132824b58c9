import { randomInt } from "node:crypto";
import {
  encodeBinding,
  encodeBound,
  encodeCodeSent,
  encodeUnbound,
  type ConfirmCode,
  type RequestCode,
  type UnboundReason,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import type { BareJid, PhoneNumber } from "../../src/util/ids.js";
import type { EnlistedProvider } from "../config.js";
import type { GatekeeperContext } from "../context.js";
import type { DeliveryQueue } from "../delivery/queue.js";
import { notify } from "../delivery/notify.js";
import { refuse, secondsUntil } from "../errors.js";
import { Counters, DAY_MS } from "../state/counters.js";
import { checkHandle, foldHandle } from "./handles.js";

/** Fixed in 0.x (§8.3): code length, validity and attempts. */
export const CODE_LENGTH = 6;
export const CODE_VALIDITY_MS = 600_000;
export const ATTEMPTS_PER_CODE = 5;
export const FAILURES_BEFORE_LOCK = 10;
export const LOCK_MS = DAY_MS;

interface CodeRow {
  provider: string;
  phone: string;
  jid: string;
  code: string;
  expires_at: number;
  attempts: number;
  invalidated: number | boolean;
}

/** Phone verification, bindings and handles (§9.1, §9.2, E16). Counters are per (provider, phone). */
export class IdentityService {
  constructor(
    private readonly ctx: GatekeeperContext,
    private readonly queue: DeliveryQueue,
  ) {}

  async requestCode(p: EnlistedProvider, jid: BareJid, r: RequestCode): Promise<XmlElement> {
    await this.checkLock(p, r.phone);
    const { counters, limits } = this.ctx;
    const now = this.ctx.now();
    const interval = limits["verification-interval-seconds"] * 1000;
    const pair = `${p.id}|${jid}|${r.phone}`;
    const last = (await counters.times("verify-pair", pair, interval)).at(-1);
    if (last !== undefined) {
      throw this.rateLimited(last + interval, now, `request-code for ${r.phone} too soon`);
    }
    for (const [scope, subject, limit] of [
      ["verify-phone", `${p.id}|${r.phone}`, limits["verification-requests-per-phone"]],
      ["verify-user", `${p.id}|${jid}`, limits["verification-requests-per-user"]],
    ] as const) {
      const free = Counters.freeAt(await counters.times(scope, subject, DAY_MS), limit, 1, DAY_MS);
      if (free !== undefined) throw this.rateLimited(free, now, `${scope} quota used up`);
    }
    await counters.record("verify-pair", pair);
    await counters.record("verify-phone", `${p.id}|${r.phone}`);
    await counters.record("verify-user", `${p.id}|${jid}`);
    const code = String(randomInt(0, 10 ** CODE_LENGTH)).padStart(CODE_LENGTH, "0");
    const expires = now + CODE_VALIDITY_MS;
    await this.ctx
      .knex("gk_codes")
      .insert({
        provider: p.id,
        phone: r.phone,
        jid,
        code,
        expires_at: expires,
        attempts: 0,
        invalidated: false,
        created_at: now,
      })
      .onConflict(["provider", "phone", "jid"])
      .merge();
    this.ctx.log.info({ provider: p.id, phone: r.phone, channel: r.channel }, "code sent");
    return encodeCodeSent({
      phone: r.phone,
      length: CODE_LENGTH,
      expires: new Date(expires),
      resendAfter: limits["verification-interval-seconds"],
    });
  }

  async confirmCode(p: EnlistedProvider, jid: BareJid, c: ConfirmCode): Promise<XmlElement> {
    await this.checkLock(p, c.phone);
    const now = this.ctx.now();
    const row = (await this.ctx
      .knex("gk_codes")
      .where({ provider: p.id, phone: c.phone, jid })
      .first()) as CodeRow | undefined;
    if (row === undefined || Boolean(row.invalidated) || Number(row.expires_at) <= now) {
      throw refuse({ name: "code-expired" }, `no valid code of ${jid} for ${c.phone}`);
    }
    if (row.code !== c.code) {
      const attempts = row.attempts + 1;
      const left = Math.max(0, ATTEMPTS_PER_CODE - attempts);
      await this.ctx
        .knex("gk_codes")
        .where({ provider: p.id, phone: c.phone, jid })
        .update({ attempts, invalidated: left === 0 });
      const failures = `${p.id}|${c.phone}`;
      await this.ctx.counters.record("verify-fail", failures);
      if (
        (await this.ctx.counters.count("verify-fail", failures, DAY_MS)) >= FAILURES_BEFORE_LOCK
      ) {
        await this.ctx
          .knex("gk_locks")
          .insert({ provider: p.id, phone: c.phone, until: now + LOCK_MS })
          .onConflict(["provider", "phone"])
          .merge();
      }
      throw refuse({ name: "code-invalid", attemptsLeft: left }, `wrong code for ${c.phone}`);
    }
    await this.ctx.knex("gk_codes").where({ provider: p.id, phone: c.phone }).delete();
    await this.bind(p, jid, c.phone);
    return encodeBound({ phone: c.phone, jid });
  }

  async binding(p: EnlistedProvider, jid: BareJid): Promise<XmlElement> {
    return encodeBinding(await this.phoneOf(p, jid));
  }

  async unbind(p: EnlistedProvider, jid: BareJid): Promise<void> {
    const phone = await this.phoneOf(p, jid);
    if (phone === undefined) return;
    await this.ctx.knex("gk_bindings").where({ provider: p.id, jid }).delete();
    await this.sendUnbound(jid, phone, "unbind");
  }

  /** The gatekeeper withdraws a binding, e.g. a recycled number (§9.1 `revoked`). */
  async revoke(p: EnlistedProvider, phone: PhoneNumber): Promise<boolean> {
    const row = (await this.ctx.knex("gk_bindings").where({ provider: p.id, phone }).first()) as
      { jid: string } | undefined;
    if (row === undefined) return false;
    await this.ctx.knex("gk_bindings").where({ provider: p.id, phone }).delete();
    await this.sendUnbound(row.jid as BareJid, phone, "revoked");
    return true;
  }

  async phoneOf(p: EnlistedProvider, jid: BareJid): Promise<PhoneNumber | undefined> {
    const row = (await this.ctx.knex("gk_bindings").where({ provider: p.id, jid }).first()) as
      { phone: string } | undefined;
    return row?.phone as PhoneNumber | undefined;
  }

  async isVerified(p: EnlistedProvider, jid: BareJid): Promise<boolean> {
    return (await this.phoneOf(p, jid)) !== undefined;
  }

  /** Sets or (without a handle) clears the handle shown for an unverified user (§9.2). */
  async profile(p: EnlistedProvider, jid: BareJid, handle: string | undefined): Promise<void> {
    if (handle === undefined || handle === "") {
      await this.ctx.knex("gk_handles").where({ provider: p.id, jid }).delete();
      return;
    }
    const problem = checkHandle(handle);
    const folded = foldHandle(handle);
    const clash = (await this.ctx
      .knex("gk_handles")
      .where({ provider: p.id, folded })
      .whereNot({ jid })
      .first()) as unknown;
    if (problem !== undefined || clash !== undefined) {
      throw refuse({ name: "handle-invalid" }, problem ?? "handle taken by another user");
    }
    await this.ctx
      .knex("gk_handles")
      .insert({ provider: p.id, jid, handle, folded })
      .onConflict(["provider", "jid"])
      .merge();
  }

  async handleOf(p: EnlistedProvider, jid: BareJid): Promise<string | undefined> {
    const row = (await this.ctx.knex("gk_handles").where({ provider: p.id, jid }).first()) as
      { handle: string } | undefined;
    return row?.handle;
  }

  /** Every provider user bound to a number (logged in), for the simulator page's new chats. */
  async bindings(): Promise<{ provider: string; jid: BareJid; phone: PhoneNumber }[]> {
    const rows = (await this.ctx.knex("gk_bindings").orderBy("at", "desc")) as {
      provider: string;
      jid: string;
      phone: string;
    }[];
    return rows.map((r) => ({
      provider: r.provider,
      jid: r.jid as BareJid,
      phone: r.phone as PhoneNumber,
    }));
  }

  /** Every code still valid, newest first, for the simulator page (a login in progress). */
  async validCodes(): Promise<{ phone: PhoneNumber; code: string; expires: Date }[]> {
    const rows = (await this.ctx
      .knex("gk_codes")
      .where({ invalidated: false })
      .andWhere("expires_at", ">", this.ctx.now())
      .orderBy("created_at", "desc")) as CodeRow[];
    return rows.map((row) => ({
      phone: row.phone as PhoneNumber,
      code: row.code,
      expires: new Date(Number(row.expires_at)),
    }));
  }

  /** The latest valid code for a number, for `GET /_test/verification-codes/{digits}`. */
  async latestCode(
    phone: PhoneNumber,
  ): Promise<{ phone: PhoneNumber; code: string; expires: Date } | undefined> {
    const row = (await this.ctx
      .knex("gk_codes")
      .where({ phone, invalidated: false })
      .andWhere("expires_at", ">", this.ctx.now())
      .orderBy("created_at", "desc")
      .first()) as CodeRow | undefined;
    return row === undefined
      ? undefined
      : { phone, code: row.code, expires: new Date(Number(row.expires_at)) };
  }

  private async bind(p: EnlistedProvider, jid: BareJid, phone: PhoneNumber): Promise<void> {
    const previousHolder = (await this.ctx
      .knex("gk_bindings")
      .where({ provider: p.id, phone })
      .first()) as { jid: string } | undefined;
    const previousPhone = await this.phoneOf(p, jid);
    if (previousHolder !== undefined && previousHolder.jid === jid) return;
    await this.ctx.knex("gk_bindings").where({ provider: p.id, phone }).delete();
    await this.ctx.knex("gk_bindings").where({ provider: p.id, jid }).delete();
    await this.ctx.knex("gk_bindings").insert({ provider: p.id, jid, phone, at: this.ctx.now() });
    if (previousHolder !== undefined) {
      await this.sendUnbound(previousHolder.jid as BareJid, phone, "rebound");
    }
    if (previousPhone !== undefined) await this.sendUnbound(jid, previousPhone, "rebound");
  }

  private async sendUnbound(
    jid: BareJid,
    phone: PhoneNumber,
    reason: UnboundReason,
  ): Promise<void> {
    await notify(this.ctx, this.queue, jid, encodeUnbound({ phone, reason }));
  }

  private async checkLock(p: EnlistedProvider, phone: PhoneNumber): Promise<void> {
    const row = (await this.ctx.knex("gk_locks").where({ provider: p.id, phone }).first()) as
      { until: number } | undefined;
    if (row !== undefined && Number(row.until) > this.ctx.now()) {
      throw refuse({ name: "locked", until: new Date(Number(row.until)) }, `${phone} is locked`);
    }
  }

  private rateLimited(freeAt: number, now: number, message: string): Error {
    return refuse(
      { name: "rate-limited", scope: "verification", retryAfter: secondsUntil(freeAt, now) },
      message,
    );
  }
}
