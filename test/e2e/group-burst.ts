import type { MatrixUser, WhatsAppUser } from "../../scripts/demo/clients.js";
import { timeline, waitFor, type FaultWorld } from "../faults/world.js";
import { bodyOfEntry, receivedIn } from "./group-world.js";

/**
 * The group burst of the kill test: numbered messages from several members of one group at once,
 * and the tally of what every receiver got from every sender. Every body is `<sender>-<run>-<n>`,
 * so a lost, duplicated or reordered message shows up by its number and its sender.
 */

/** A member who sends in the burst. */
export interface BurstSender {
  name: string;
  send(body: string): Promise<unknown>;
}

/** Where a receiver's messages are read, in arrival order. */
export interface BurstReceiver {
  name: string;
  /** Senders whose messages this receiver must get (not itself). */
  from: readonly string[];
  bodies(): Promise<string[]>;
}

export interface SenderCount {
  received: number;
  missing: number[];
  duplicated: number[];
  outOfOrder: number;
}

export type BurstTally = Record<string, Record<string, SenderCount>>;

/** Logs a Matrix user in to the bridge of a FaultWorld by the bot's phone flow. */
export async function loginAt(
  world: FaultWorld,
  localpart: string,
  phone: string,
): Promise<{ me: MatrixUser; mgmt: string; jid: string }> {
  const me = world.matrixUser(localpart);
  const mgmt = await me.createDm(world.botUserId());
  const command = async (text: string, answer: RegExp): Promise<void> => {
    const before = (await me.events(mgmt)).length;
    await me.send(mgmt, "m.room.message", { msgtype: "m.text", body: text });
    await waitFor(`the bot to answer "${text}" with ${answer}`, async () =>
      (await me.events(mgmt))
        .slice(before)
        .some((e) => e.sender === world.botUserId() && answer.test(String(e.content["body"]))),
    );
  };
  await waitFor("the bot's greeting", async () =>
    (await me.events(mgmt)).some((e) => e.sender === world.botUserId()),
  );
  await command("login", /./);
  await command("phone", /phone number/i);
  await command(phone, /code/i);
  const admin = world.whatsApp(phone);
  const code = await waitFor("the verification code", async () => {
    const answer = await admin.request("GET", `/_test/verification-codes/${phone.slice(1)}`);
    return answer.status === 200 ? String(answer.json["code"]) : undefined;
  });
  await command(code, /^Logged in/);
  return { me, mgmt, jid: world.jidOf(me) };
}

/** A portal's message bodies as a plain Matrix user pages them. */
export function portalReceiver(
  name: string,
  me: MatrixUser,
  portal: string,
  from: readonly string[],
): BurstReceiver {
  return {
    name,
    from,
    bodies: async () =>
      (await timeline(me, portal))
        .filter((e) => e.type === "m.room.message")
        .map((e) => String(e.content["body"] ?? "")),
  };
}

export function whatsAppReceiver(
  user: WhatsAppUser,
  group: string,
  from: readonly string[],
): BurstReceiver {
  return {
    name: user.phone,
    from,
    bodies: async () => (await receivedIn(user, group)).map((e) => bodyOfEntry(e) ?? ""),
  };
}

export class GroupBurst {
  readonly run = Math.random().toString(36).slice(2, 8);

  constructor(
    readonly senders: readonly BurstSender[],
    readonly receivers: readonly BurstReceiver[],
    /** Messages per sender. */
    readonly perSender: number,
  ) {}

  token(sender: string, n: number): string {
    return `${sender}-${this.run}-${n}`;
  }

  /**
   * Every sender sends its numbered messages in order, all senders concurrently. `during(n)` runs
   * once before message n of every sender, all of them waiting for it (the fault goes there).
   */
  async send(during?: (n: number) => Promise<void>): Promise<void> {
    const hooks = new Map<number, Promise<void>>();
    const hook = (n: number): Promise<void> => {
      if (during === undefined) return Promise.resolve();
      let p = hooks.get(n);
      if (p === undefined) {
        p = during(n);
        hooks.set(n, p);
      }
      return p;
    };
    await Promise.all(
      this.senders.map(async (s) => {
        for (let n = 0; n < this.perSender; n++) {
          await hook(n);
          await retrying(() => s.send(this.token(s.name, n)));
        }
      }),
    );
  }

  async tally(): Promise<BurstTally> {
    const out: BurstTally = {};
    for (const r of this.receivers) {
      const bodies = await r.bodies();
      out[r.name] = {};
      for (const sender of r.from) {
        const prefix = `${sender}-${this.run}-`;
        const numbers = bodies.flatMap((b) =>
          b.startsWith(prefix) ? [Number(b.slice(prefix.length))] : [],
        );
        (out[r.name] as Record<string, SenderCount>)[sender] = count(numbers, this.perSender);
      }
    }
    return out;
  }

  static complete(t: BurstTally): boolean {
    return Object.values(t).every((bySender) =>
      Object.values(bySender).every((c) => c.missing.length === 0),
    );
  }

  static describe(t: BurstTally): string {
    return Object.entries(t)
      .map(
        ([receiver, bySender]) =>
          `${receiver}: ` +
          Object.entries(bySender)
            .map(
              ([sender, c]) =>
                `${sender} ${c.received - c.duplicated.length}/${c.received} ` +
                `(${c.missing.length} lost${c.missing.length > 0 ? ` ${c.missing.slice(0, 5).join(",")}` : ""}, ` +
                `${c.duplicated.length} dup, ${c.outOfOrder} out of order)`,
            )
            .join("; "),
      )
      .join("\n      ");
  }

  /** Waits until every receiver has every message (or `ms`), then a quiet period; the tally. */
  async settle(world: FaultWorld, ms = 180_000, quietMs = 4000): Promise<BurstTally> {
    let last: BurstTally | undefined;
    await waitFor(
      "every group message at every member",
      async () => {
        last = await this.tally();
        return GroupBurst.complete(last);
      },
      ms,
      () =>
        last === undefined
          ? "nothing tallied"
          : `${GroupBurst.describe(last)}\nbridge log tail:\n${world.bridgeLog.slice(-3000)}`,
    );
    await new Promise((r) => setTimeout(r, quietMs));
    return this.tally();
  }
}

function count(arrived: number[], total: number): SenderCount {
  const seen = new Map<number, number>();
  let outOfOrder = 0;
  let highest = -1;
  for (const n of arrived) {
    seen.set(n, (seen.get(n) ?? 0) + 1);
    if (n < highest) outOfOrder += 1;
    highest = Math.max(highest, n);
  }
  const missing: number[] = [];
  for (let n = 0; n < total; n++) if (!seen.has(n)) missing.push(n);
  return {
    received: arrived.length,
    missing,
    duplicated: [...seen].filter(([, times]) => times > 1).map(([n]) => n),
    outOfOrder,
  };
}

/** The test's own clients retry a refused request: the sender's retry is not what is tested. */
async function retrying<T>(action: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
