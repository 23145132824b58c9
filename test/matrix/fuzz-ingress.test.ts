import assert from "node:assert/strict";
import { BOT } from "./harness.js";
import { BOB_GHOST, startPortalWorld, type PortalWorld } from "./portal-world.js";
import { prng } from "../helpers/prng.js";

const SEED = 0x13_13_13;
const EVENTS = 10_000;
const PER_TRANSACTION = 50;

/**
 * 10,000 seeded random Matrix events (random types, contents, relations, ids, senders and sizes up
 * to 100 KB) pushed to the real bridge, whose homeserver refuses events over 64 KiB: no crash, no
 * unhandled rejection, every transaction acknowledged, every event settled, and afterwards one
 * legitimate message each way arrives exactly once. Replay a failure with its SEED.
 */
describe("fuzz: random Matrix events through the real bridge", function () {
  this.timeout(240_000);
  let w: PortalWorld;
  let clock = Date.now();
  const problems: string[] = [];
  const onRejection = (reason: unknown) => problems.push(`unhandled rejection: ${String(reason)}`);
  const onException = (err: unknown) => problems.push(`uncaught exception: ${String(err)}`);

  before(async function () {
    w = await startPortalWorld({
      now: () => clock,
      ingressPolicy: { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 3 },
    });
    process.on("unhandledRejection", onRejection);
    process.on("uncaughtException", onException);
  });
  after(async function () {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
    await w?.dispose();
  });

  it(`${EVENTS} random events leave the bridge running and delivering`, async function () {
    const { h, portalBob, portalCarol, mgmt } = w;
    const rnd = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
    const chance = (p: number) => rnd() < p;
    const known: string[] = [];
    for (const room of [portalBob, portalCarol]) {
      for (let i = 0; i < 3; i++)
        known.push(await w.send(room, "m.room.message", { msgtype: "m.text", body: `seed ${i}` }));
    }

    const text = (): string => {
      const size = chance(0.8)
        ? Math.floor(rnd() * 200)
        : chance(0.75)
          ? Math.floor(rnd() * 5000)
          : Math.floor(rnd() * 100_000);
      const alphabet = pick([
        "abc xyz ",
        "*_~`> \n",
        "\u202E\u200B\u200D😀👨‍👩 ",
        "<b>&amp;</b><script>",
        "!wa help login ",
      ]);
      let out = "";
      while (out.length < size) out += alphabet[Math.floor(rnd() * alphabet.length)];
      return out;
    };
    const eventRef = () =>
      chance(0.7) ? pick(known) : pick([`$nowhere${Math.floor(rnd() * 100)}`, "not an id", "", 42]);
    const relation = (): unknown =>
      pick([
        undefined,
        { "m.in_reply_to": { event_id: eventRef() } },
        { rel_type: "m.replace", event_id: eventRef() },
        { rel_type: "m.annotation", event_id: eventRef(), key: chance(0.5) ? "👍" : text() },
        { rel_type: "m.thread", event_id: eventRef(), is_falling_back: true },
        "garbage",
        { rel_type: text().slice(0, 50) },
      ]);
    const content = (type: string): unknown => {
      if (chance(0.03)) return pick([null, "string content", [1, 2], 7]);
      switch (type) {
        case "m.room.message":
        case "m.sticker":
          return {
            msgtype: chance(0.9)
              ? pick([
                  "m.text",
                  "m.notice",
                  "m.emote",
                  "m.image",
                  "m.file",
                  "m.video",
                  "m.audio",
                  "m.location",
                ])
              : text(),
            body: chance(0.95) ? text() : pick([null, 12, { a: 1 }]),
            ...(chance(0.3) ? { format: "org.matrix.custom.html", formatted_body: text() } : {}),
            ...(chance(0.2)
              ? { url: pick(["mxc://example.org/missing", "https://evil.example/x", "mxc://"]) }
              : {}),
            ...(chance(0.1) ? { "m.new_content": { msgtype: "m.text", body: text() } } : {}),
            ...(chance(0.4) ? { "m.relates_to": relation() } : {}),
          };
        case "m.reaction":
          return { "m.relates_to": relation() };
        case "m.room.member":
          return { membership: pick(["invite", "join", "leave", "ban", text().slice(0, 20)]) };
        default:
          return { body: text(), "m.relates_to": relation() };
      }
    };

    const statuses = new Map<number, number>();
    for (let start = 0; start < EVENTS; start += PER_TRANSACTION) {
      const events: Record<string, unknown>[] = [];
      for (let i = start; i < Math.min(EVENTS, start + PER_TRANSACTION); i++) {
        const type = chance(0.85)
          ? pick([
              "m.room.message",
              "m.room.message",
              "m.room.message",
              "m.reaction",
              "m.room.redaction",
              "m.room.member",
              "m.sticker",
              "m.poll.start",
              "m.room.encrypted",
              "m.call.invite",
              "m.room.name",
            ])
          : text().slice(0, 300);
        let room = pick([
          portalBob,
          portalBob,
          portalCarol,
          portalCarol,
          mgmt,
          "!unknown:example.org",
          "!has space:example.org",
          text().slice(0, 80),
        ]);
        let sender = chance(0.85)
          ? h.alice.userId
          : pick(["@stranger:example.org", BOB_GHOST, BOT, text().slice(0, 60)]);
        let stateKey: string | undefined;
        if (type === "m.room.member") {
          // Alice's own membership in her portals is not fuzzed: leaving is a legitimate act
          // whose consequence (a re-invite) the check afterwards does not model.
          stateKey = pick([BOT, "@stranger:example.org", BOB_GHOST]);
          if (stateKey !== BOT && (room === portalBob || room === portalCarol))
            sender = "@stranger:example.org";
          if (stateKey === BOT && chance(0.5)) room = `!invite${i}:example.org`;
        }
        if (type === "m.room.name") stateKey = "";
        events.push({
          type,
          room_id: room,
          sender,
          event_id: chance(0.97) ? `$fz${i}` : pick(["$has space", 5, "", `$${"x".repeat(300)}`]),
          origin_server_ts: Date.now(),
          content: content(type),
          ...(stateKey === undefined ? {} : { state_key: stateKey }),
          ...(type === "m.room.redaction" ? { redacts: eventRef() } : {}),
        });
        if (type === "m.room.message" && chance(0.2)) known.push(`$fz${i}`);
      }
      const status = await w.push(events);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    assert.deepEqual(
      [...statuses.keys()],
      [200],
      `every transaction acknowledged: ${JSON.stringify([...statuses])}`,
    );

    const db = h.bridge.db.knex;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [row] = (await db("matrix_inbox").where({ state: "pending" }).count({ n: "*" })) as {
        n: number | string;
      }[];
      if (Number(row?.n ?? 0) === 0) break;
      if (Date.now() > deadline) throw new Error(`${String(row?.n)} events still pending`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const states = (await db("matrix_inbox")
      .select("state")
      .count({ n: "*" })
      .groupBy("state")) as { state: string; n: number | string }[];
    process.stderr.write(`      inbox after the fuzz: ${JSON.stringify(states)}\n`);
    if (process.env["FUZZ_DEBUG"]) {
      const failed = await db("matrix_inbox").where({ state: "failed" }).select("error", "room_id");
      process.stderr.write(JSON.stringify(failed) + "\n");
      process.stderr.write(JSON.stringify(await db("portals").select()) + "\n");
    }

    clock += 2 * 60_000; // past the per-minute message limit the fuzz exhausted
    await w.legitimateTrafficFlows("the fuzz");
    assert.deepEqual(problems, []);
  });
});
