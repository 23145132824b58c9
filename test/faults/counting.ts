import assert from "node:assert/strict";
import type { RoomEvent } from "../../scripts/demo/clients.js";
import { sleep, timeline, waitFor, type Conversation, type FaultWorld } from "./world.js";

/**
 * A burst of numbered messages in both directions of one conversation, and the tally of what each
 * side received: every body carries a unique token `<prefix>-<run>-<n>`, so that a lost, duplicated
 * or reordered message shows up by its number.
 */
export class Burst {
  readonly run = Math.random().toString(36).slice(2, 8);
  private sentMx = 0;
  private sentWa = 0;

  constructor(
    private readonly conversation: Conversation,
    readonly total: number,
  ) {}

  mxToken(n: number): string {
    return `mx-${this.run}-${n}`;
  }

  waToken(n: number): string {
    return `wa-${this.run}-${n}`;
  }

  /**
   * Sends messages `from`..`to` (exclusive) each way, the two directions concurrently, each in
   * order. `during(n)` runs before message n of each direction is sent, once per n, both senders
   * waiting for it: a fault is injected there while messages of both directions are in flight.
   */
  async send(from: number, to: number, during?: (n: number) => Promise<void>): Promise<void> {
    const { me, portal, contact, myJid } = this.conversation;
    const pending = new Map<number, Promise<void>>();
    const hook = (n: number): Promise<void> => {
      if (during === undefined) return Promise.resolve();
      let p = pending.get(n);
      if (p === undefined) {
        p = during(n);
        pending.set(n, p);
      }
      return p;
    };
    await Promise.all([
      (async () => {
        for (let n = from; n < to; n++) {
          await hook(n);
          await retrying(() =>
            me.send(portal, "m.room.message", { msgtype: "m.text", body: this.mxToken(n) }),
          );
          this.sentMx = n + 1;
        }
      })(),
      (async () => {
        for (let n = from; n < to; n++) {
          await hook(n);
          await retrying(() => contact.send({ type: "text", to: myJid, text: this.waToken(n) }));
          this.sentWa = n + 1;
        }
      })(),
    ]);
  }

  /** What arrived so far on each side, by token number, in arrival order. */
  async tally(): Promise<Tally> {
    const { me, portal, contact } = this.conversation;
    const events = await timeline(me, portal);
    const wa = (await contact.received("message")).map((e) => textOf(e.data));
    const atMatrix = numbers(
      events.filter((e) => e.sender !== me.userId).map((e) => String(e.content["body"] ?? "")),
      `wa-${this.run}-`,
    );
    const atWhatsApp = numbers(wa, `mx-${this.run}-`);
    const notices = events.filter(
      (e) =>
        e.sender !== me.userId &&
        e.content["msgtype"] === "m.notice" &&
        /^Not (delivered|sent)/.test(String(e.content["body"])),
    );
    return {
      toMatrix: count(atMatrix, this.total),
      toWhatsApp: count(atWhatsApp, this.total),
      failureNotices: notices.map((e) => String(e.content["body"])),
      matrixEvents: events,
    };
  }

  /**
   * Waits until both sides have every message (or `ms` passed), then a quiet period in which a
   * late duplicate could still arrive, and returns the final tally.
   */
  async settle(world: FaultWorld, ms = 120_000, quietMs = 3000): Promise<Tally> {
    let last: Tally | undefined;
    await waitFor(
      "every message to arrive on both sides",
      async () => {
        last = await this.tally();
        return (
          last.toMatrix.missing.length === 0 &&
          last.toWhatsApp.missing.length === 0 &&
          last.toMatrix.received >= this.total
        );
      },
      ms,
      () =>
        last === undefined
          ? "nothing tallied"
          : `${describeTally(last)}; bridge log tail:\n${world.bridgeLog.slice(-3000)}`,
    ).catch(async (err: unknown) => {
      // Report the tally even so: the counts say whether it is loss or slowness.
      if (last !== undefined) process.stdout.write(`      ${describeTally(last)}\n`);
      throw err;
    });
    await sleep(quietMs);
    return this.tally();
  }

  get sent(): { toMatrix: number; toWhatsApp: number } {
    return { toMatrix: this.sentWa, toWhatsApp: this.sentMx };
  }
}

export interface DirectionCount {
  /** Messages received, duplicates included. */
  received: number;
  distinct: number;
  missing: number[];
  duplicated: number[];
  /** Positions where a lower number arrived after a higher one. */
  outOfOrder: number;
  /** The first few of those: "n after m". */
  inversions: string[];
}

export interface Tally {
  toMatrix: DirectionCount;
  toWhatsApp: DirectionCount;
  failureNotices: string[];
  matrixEvents: RoomEvent[];
}

export function describeTally(t: Tally): string {
  const d = (c: DirectionCount) =>
    `${c.distinct} delivered, ${c.missing.length} lost${list(c.missing)}, ` +
    `${c.duplicated.length} duplicated${list(c.duplicated)}, ${c.outOfOrder} out of order` +
    (c.inversions.length === 0 ? "" : ` (${c.inversions.join(", ")})`);
  return (
    `WhatsApp->Matrix: ${d(t.toMatrix)}; Matrix->WhatsApp: ${d(t.toWhatsApp)}; ` +
    `failure notices: ${t.failureNotices.length}`
  );
}

function list(ns: number[]): string {
  return ns.length === 0 ? "" : ` (${ns.slice(0, 10).join(",")}${ns.length > 10 ? ",..." : ""})`;
}

/**
 * Prints the counts and asserts none lost, none duplicated, none reported failed, order kept. On
 * failure the bridge's warnings and errors are printed, for the diagnosis.
 */
export function assertExactlyOnce(
  t: Tally,
  options: { ordered?: boolean; world?: FaultWorld } = {},
): void {
  try {
    checkExactlyOnce(t, options);
  } catch (err) {
    const lines = (options.world?.bridgeLog ?? "")
      .split("\n")
      .filter((line) => /\b(WARN|ERROR|FATAL)\b/.test(line));
    process.stdout.write(`      bridge warnings and errors:\n${lines.slice(-40).join("\n")}\n`);
    throw err;
  }
}

function checkExactlyOnce(t: Tally, options: { ordered?: boolean }): void {
  process.stdout.write(`      ${describeTally(t)}\n`);
  assert.deepEqual(t.toMatrix.missing, [], "WhatsApp->Matrix messages lost");
  assert.deepEqual(t.toMatrix.duplicated, [], "WhatsApp->Matrix messages duplicated");
  assert.deepEqual(t.toWhatsApp.missing, [], "Matrix->WhatsApp messages lost");
  assert.deepEqual(t.toWhatsApp.duplicated, [], "Matrix->WhatsApp messages duplicated");
  assert.deepEqual(t.failureNotices, [], "messages reported as failed");
  if (options.ordered ?? true) {
    assert.equal(t.toMatrix.outOfOrder, 0, "WhatsApp->Matrix order");
    assert.equal(t.toWhatsApp.outOfOrder, 0, "Matrix->WhatsApp order");
  }
}

function textOf(data: Record<string, unknown>): string {
  const content = data["content"] as { kind: string; text?: string }[] | undefined;
  return content?.find((c) => c.kind === "body")?.text ?? "";
}

function numbers(bodies: string[], prefix: string): number[] {
  return bodies.flatMap((b) => (b.startsWith(prefix) ? [Number(b.slice(prefix.length))] : []));
}

function count(arrived: number[], total: number): DirectionCount {
  const seen = new Map<number, number>();
  let outOfOrder = 0;
  let highest = -1;
  const inversions: string[] = [];
  for (const n of arrived) {
    seen.set(n, (seen.get(n) ?? 0) + 1);
    if (n < highest) {
      outOfOrder += 1;
      if (inversions.length < 5) inversions.push(`${n} after ${highest}`);
    }
    highest = Math.max(highest, n);
  }
  const missing: number[] = [];
  for (let n = 0; n < total; n++) if (!seen.has(n)) missing.push(n);
  return {
    received: arrived.length,
    distinct: seen.size,
    missing,
    duplicated: [...seen].filter(([, times]) => times > 1).map(([n]) => n),
    outOfOrder,
    inversions,
  };
}

/**
 * The test's own clients retry a failed request (the homeserver or the simulator under fault may
 * refuse one): the sender's retry is part of the scenario, not what is being tested.
 */
async function retrying<T>(action: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(250 * attempt);
    }
  }
}
