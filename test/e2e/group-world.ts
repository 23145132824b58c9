import * as sdk from "matrix-js-sdk";
import { createLogger, type LogLevel } from "../../src/util/log.js";
import { KeyVault } from "../../src/vault/key-vault.js";
import { SignalCrypto } from "../../src/interop/crypto/signal-crypto.js";
import type { DeviceAddress } from "../../src/interop/crypto/types.js";
import type { BareJid, DeviceId } from "../../src/util/ids.js";
import { DEFAULT_USERS_VAULT_KEY } from "../../simulator/users/index.js";
import type { EnlistedProvider } from "../../simulator/config.js";
import { E2e, eventually, WhatsAppUser, type Received } from "./harness.js";
import { GroupPeer } from "./group-peer.js";

/** The second provider domain of the group tests (enlisted at the simulator beside the bridge). */
export const OTHER: EnlistedProvider = {
  id: "other-example",
  name: "Other Provider",
  domain: "other.example",
  secret: "other-secret",
};

export const PHONE_ALICE = "+491700000001";
export const PHONE_BOB = "+491700000002";

/**
 * The e2e world of the group tests: two Matrix users of the bridge (alice and bob, each a js-sdk
 * client logged in to the bridge with a phone number of their own), simulated WhatsApp users
 * driven through the simulator's admin API, and carol, a user of a second provider domain
 * (`GroupPeer` over that provider's own component connection).
 */
export class GroupE2e {
  private constructor(
    readonly alice: E2e,
    readonly bob: E2e,
    readonly carol: GroupPeer,
  ) {}

  static async start(): Promise<GroupE2e> {
    const level = process.env["E2E_BRIDGE_LOG"];
    const alice = await E2e.start("alice", {
      extraProviders: [OTHER],
      // E2E_BRIDGE_LOG=<level> writes the bridge's log to stderr, for a failure's diagnosis.
      ...(level === undefined
        ? {}
        : { log: createLogger({ level: level as LogLevel, format: "text" }) }),
      // Bursts come from few users: the bridge's per-user abuse limits would refuse them.
      config: {
        limits: {
          messages_per_minute: 1_000_000,
          new_chats_per_hour: 1_000_000,
          message_requests_per_hour: 1_000_000,
        },
      },
    });
    try {
      const bob = await alice.another("bob");
      const carol = await GroupPeer.connect(alice.world.sim.service, OTHER, "carol");
      await alice.login(PHONE_ALICE);
      await bob.login(PHONE_BOB);
      return new GroupE2e(alice, bob, carol);
    } catch (err) {
      await alice.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.carol.close().catch(() => undefined);
    await this.bob.stop();
    await this.alice.stop();
  }

  get matrixUsers(): E2e[] {
    return [this.alice, this.bob];
  }

  whatsappUser(phone: string): Promise<WhatsAppUser> {
    return this.alice.whatsappUser(phone);
  }

  // --- the gatekeeper side, through the admin API --------------------------------------------

  createGroup(by: WhatsAppUser, subject: string, participants: string[]): Promise<string> {
    return createGroup(by, subject, participants);
  }

  async change(
    by: WhatsAppUser,
    group: string,
    op: "add" | "remove" | "promote" | "demote",
    participants: string[],
  ): Promise<void> {
    const answer = await by.request("POST", `/users/${by.digits}/groups/${group}/${op}`, {
      participants,
    });
    if (answer.status !== 200) {
      throw new Error(`${op} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    }
  }

  async setSubject(by: WhatsAppUser, group: string, subject: string): Promise<void> {
    const answer = await by.request("PUT", `/users/${by.digits}/groups/${group}/subject`, {
      subject,
    });
    if (answer.status !== 200) {
      throw new Error(`subject answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    }
  }

  groupSend(by: WhatsAppUser, group: string, text: string): Promise<string> {
    return groupSend(by, group, text);
  }

  /** The group as the gatekeeper holds it. */
  async groupState(group: string): Promise<{
    subject?: string;
    participants: { jid: string; role: string }[];
  }> {
    const answer = await this.admin().request("GET", `/groups/${group}`);
    if (answer.status !== 200) throw new Error(`group info answered ${answer.status}`);
    return answer.json as never;
  }

  /** The JID of the group the gatekeeper holds with this subject, if any. */
  async groupWithSubject(subject: string): Promise<string | undefined> {
    const answer = await this.admin().request("GET", "/groups");
    for (const jid of (answer.json["groups"] as string[] | undefined) ?? []) {
      if ((await this.groupState(jid)).subject === subject) return jid;
    }
    return undefined;
  }

  receivedIn(user: WhatsAppUser, group: string): Promise<Received[]> {
    return receivedIn(user, group);
  }

  /** How many times `body` reached `user` in `group`. */
  async countAt(user: WhatsAppUser, group: string, body: string): Promise<number> {
    return (await this.receivedIn(user, group)).filter((e) => bodyOfEntry(e) === body).length;
  }

  /** Waits until the gatekeeper has nothing queued for the bridge (it acked every delivery). */
  async bridgeQueueEmpty(): Promise<void> {
    const domain = this.alice.world.config.interop.component_domain;
    await eventually(async () => {
      const answer = await this.admin().request("GET", "/queue");
      const per = answer.json["perProvider"] as Record<string, number> | undefined;
      return per?.[domain] === 0 ? true : undefined;
    }, "the gatekeeper's queue to the bridge to drain");
  }

  /** The admin API without a user (the phone is never used). */
  private admin(): WhatsAppUser {
    return new WhatsAppUser(this.alice.world.adminUrl, this.alice.world.adminToken, "+0", "");
  }

  /** Device ids of a simulated user. */
  async devicesOf(user: WhatsAppUser): Promise<DeviceId[]> {
    const answer = await user.request("GET", `/users/${user.digits}`);
    return (answer.json["devices"] as DeviceId[] | undefined) ?? [];
  }

  /**
   * Tries to `groupDecrypt` a group ciphertext with a simulated user's device store, read from the
   * simulator's database: resolves "decrypted", or the error's class name (NoSenderKeyError: the
   * device never got the sender key; DuplicateMessageError: it already decrypted this message).
   * Nothing is written on failure, so the user's own state is untouched.
   */
  async tryDecryptAs(
    user: WhatsAppUser,
    device: DeviceId,
    group: string,
    sender: DeviceAddress,
    ciphertext: Uint8Array,
  ): Promise<string> {
    const sim = this.alice.world.sim;
    const crypto = new SignalCrypto({
      knex: sim.gatekeeper.ctx.knex,
      vault: KeyVault.fromKey(DEFAULT_USERS_VAULT_KEY),
    });
    const d = await crypto.device(user.jid as BareJid, device);
    try {
      await d.groups.decrypt(group, sender, ciphertext, async () => undefined);
      return "decrypted";
    } catch (err) {
      return err instanceof Error ? err.constructor.name : String(err);
    }
  }
}

/** A group a simulated WhatsApp user creates (§17.1) through the admin API; its JID. */
export async function createGroup(
  by: WhatsAppUser,
  subject: string,
  participants: string[],
): Promise<string> {
  const answer = await by.request("POST", `/users/${by.digits}/groups`, { subject, participants });
  if (answer.status !== 201) {
    throw new Error(`creating the group answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  }
  return String(answer.json["jid"]);
}

/** A text from a simulated WhatsApp user to the group (sender keys, §17.4); its origin-id. */
export async function groupSend(by: WhatsAppUser, group: string, text: string): Promise<string> {
  const answer = await by.request("POST", `/users/${by.digits}/groups/${group}/send`, { text });
  if (answer.status !== 201) {
    throw new Error(`group send answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  }
  return String(answer.json["originId"]);
}

/** Group messages a simulated user received in `group`, oldest first. */
export async function receivedIn(user: WhatsAppUser, group: string): Promise<Received[]> {
  return (await user.received("message")).filter((e) => e.data["group"] === group);
}

export function bodyOfEntry(e: Received): string | undefined {
  const content = e.data["content"] as { kind: string; text?: string }[] | undefined;
  return content?.find((c) => c.kind === "body")?.text;
}

/** Messages (m.room.message) in a room as one Matrix user's client sees them. */
export function roomMessages(user: E2e, room: string): sdk.MatrixEvent[] {
  return user.timeline(room).filter((e) => e.getType() === "m.room.message");
}

/** How many events with this body the user's client shows in the room. */
export function countInRoom(user: E2e, room: string, body: string): number {
  return roomMessages(user, room).filter((e) => e.getContent()["body"] === body).length;
}
