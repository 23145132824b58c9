import { gatekeeperUserJid } from "../../src/interop/codec/index.js";
import { BridgeError } from "../../src/util/errors.js";
import type { BareJid, PhoneNumber } from "../../src/util/ids.js";
import type { GatekeeperContext } from "../context.js";

export interface Account {
  jid: BareJid;
  phone: PhoneNumber;
  optedIn: boolean;
  /** Provider ids allowed to reach the user; undefined allows every enlisted provider. */
  allowedProviders: string[] | undefined;
  readMarkers: boolean;
}

interface Row {
  jid: string;
  phone: string;
  opted_in: number | boolean;
  allowed_providers: string | null;
  read_markers: number | boolean;
}

/** Gatekeeper users and their third-party messaging settings (§10.1). */
export class Accounts {
  constructor(private readonly ctx: GatekeeperContext) {}

  async create(
    phone: PhoneNumber,
    settings: { optedIn?: boolean; allowedProviders?: string[] | undefined } = {},
  ): Promise<Account> {
    const jid = gatekeeperUserJid(phone, this.ctx.settings.domain);
    if ((await this.get(jid)) !== undefined) {
      throw new BridgeError("user-exists", `${phone} is already a gatekeeper user`);
    }
    await this.ctx.knex("gk_users").insert({
      jid,
      phone,
      opted_in: settings.optedIn ?? true,
      allowed_providers:
        settings.allowedProviders === undefined ? null : JSON.stringify(settings.allowedProviders),
      read_markers: true,
      created_at: this.ctx.now(),
    });
    return (await this.get(jid)) as Account;
  }

  async get(jid: BareJid): Promise<Account | undefined> {
    const row = (await this.ctx.knex("gk_users").where({ jid }).first()) as Row | undefined;
    if (row === undefined) return undefined;
    return {
      jid,
      phone: row.phone as PhoneNumber,
      optedIn: Boolean(row.opted_in),
      allowedProviders:
        row.allowed_providers === null
          ? undefined
          : (JSON.parse(row.allowed_providers) as string[]),
      readMarkers: Boolean(row.read_markers),
    };
  }

  async list(): Promise<Account[]> {
    const rows = (await this.ctx.knex("gk_users").select("jid").orderBy("jid")) as {
      jid: string;
    }[];
    const out: Account[] = [];
    for (const r of rows) {
      const a = await this.get(r.jid as BareJid);
      if (a !== undefined) out.push(a);
    }
    return out;
  }

  async update(
    jid: BareJid,
    changes: { optedIn?: boolean; allowedProviders?: string[] | null; readMarkers?: boolean },
  ): Promise<Account> {
    const patch: Record<string, unknown> = {};
    if (changes.optedIn !== undefined) patch.opted_in = changes.optedIn;
    if (changes.readMarkers !== undefined) patch.read_markers = changes.readMarkers;
    if (changes.allowedProviders !== undefined) {
      patch.allowed_providers =
        changes.allowedProviders === null ? null : JSON.stringify(changes.allowedProviders);
    }
    if (Object.keys(patch).length > 0) await this.ctx.knex("gk_users").where({ jid }).update(patch);
    const account = await this.get(jid);
    if (account === undefined) throw new BridgeError("no-such-user", `${jid} is not a user`);
    return account;
  }
}
