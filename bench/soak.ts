/**
 * Soak test (issue #7 point 6): mixed traffic for many users over a long time against the real
 * bridge process, reporting the bridge's memory growth and the drift of end-to-end latency.
 * Not part of `npm test`; run with `npm run soak`.
 *
 *   SOAK_MINUTES  duration of the traffic phase (default 30)
 *   SOAK_USERS    Matrix users, each logged in with a portal to its own WhatsApp contact (200)
 *   SOAK_RATE     background messages per second over all users, both directions (5)
 *   SOAK_REPORT   also write the report as JSON to this file
 *
 * Traffic: texts both ways, replies, reactions and edits from Matrix, in random conversations;
 * every 2 s one probe message each way whose delivery is timed. Memory: the bridge's RSS every
 * 10 s. At the end every text is checked on the other side: lost and duplicated are counted.
 */
import { readFile, writeFile } from "node:fs/promises";
import {
  FaultWorld,
  openConversation,
  sleep,
  timeline,
  waitFor,
  type Conversation,
} from "../test/faults/world.js";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const USERS = Number(process.env.SOAK_USERS ?? 200);
const RATE = Number(process.env.SOAK_RATE ?? 5);
const REPORT = process.env.SOAK_REPORT;
const LOGIN_CONCURRENCY = 8;

interface Sample {
  atMin: number;
  value: number;
}

const log = (line: string): void => {
  process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Least-squares slope of value over minutes. */
function slope(samples: Sample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((s, x) => s + x.atMin, 0) / n;
  const my = samples.reduce((s, x) => s + x.value, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.atMin - mx) * (s.value - my);
    den += (s.atMin - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function textOf(data: Record<string, unknown>): string {
  const content = data["content"] as { kind: string; text?: string }[] | undefined;
  return content?.find((c) => c.kind === "body")?.text ?? "";
}

async function main(): Promise<void> {
  log(`${USERS} users, ${MINUTES} min, ${RATE} msg/s background`);
  const world = await FaultWorld.start({
    limits: { "messages-per-minute": 1_000_000, "request-messages": 1_000_000 },
  });
  const stopAll = async () => {
    await world.stopBridge().catch(() => undefined);
    await world.stop();
  };
  try {
    await world.startBridge();
    const conversations: Conversation[] = [];
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: LOGIN_CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= USERS) return;
          const digits = String(i).padStart(5, "0");
          conversations.push(
            await openConversation(
              world,
              `soak${digits}`,
              `+4917000${digits}`,
              `+4917100${digits}`,
            ),
          );
        }
      }),
    );
    log(
      `${conversations.length} conversations open after ${Math.round((Date.now() - started) / 1000)} s`,
    );

    const pid = world.bridgePid;
    if (pid === undefined) throw new Error("the bridge is not running");
    const t0 = Date.now();
    const minutes = () => (Date.now() - t0) / 60_000;
    const memory: Sample[] = [{ atMin: 0, value: await rssMb(pid) }];
    const latency: { toWhatsApp: Sample[]; toMatrix: Sample[] } = { toWhatsApp: [], toMatrix: [] };
    const sentTexts = {
      toWhatsApp: new Map<Conversation, string[]>(),
      toMatrix: new Map<Conversation, string[]>(),
    };
    const errors: string[] = [];
    const pick = () =>
      conversations[Math.floor(Math.random() * conversations.length)] as Conversation;
    let seq = 0;
    const remember = (map: Map<Conversation, string[]>, c: Conversation, text: string) => {
      const list = map.get(c) ?? [];
      list.push(text);
      map.set(c, list);
    };
    const lastEvent = new Map<Conversation, string>();

    const endAt = t0 + MINUTES * 60_000;
    const running = () => Date.now() < endAt;

    const background = (async () => {
      const interval = 1000 / RATE;
      let due = Date.now();
      while (running()) {
        due += interval;
        const c = pick();
        const n = seq++;
        const roll = Math.random();
        try {
          if (roll < 0.45) {
            const text = `soak-mx-${n}`;
            const id = await c.me.send(c.portal, "m.room.message", {
              msgtype: "m.text",
              body: text,
            });
            lastEvent.set(c, id);
            remember(sentTexts.toWhatsApp, c, text);
          } else if (roll < 0.85) {
            const text = `soak-wa-${n}`;
            await c.contact.send({ type: "text", to: c.myJid, text });
            remember(sentTexts.toMatrix, c, text);
          } else {
            const target = lastEvent.get(c);
            if (target === undefined) continue;
            if (roll < 0.9) {
              await c.me.send(c.portal, "m.reaction", {
                "m.relates_to": { rel_type: "m.annotation", event_id: target, key: "👍" },
              });
            } else if (roll < 0.95) {
              await c.me.send(c.portal, "m.room.message", {
                msgtype: "m.text",
                body: `* edited ${n}`,
                "m.new_content": { msgtype: "m.text", body: `edited ${n}` },
                "m.relates_to": { rel_type: "m.replace", event_id: target },
              });
            } else {
              await c.me.send(c.portal, "m.room.message", {
                msgtype: "m.text",
                body: `reply ${n}`,
                "m.relates_to": { "m.in_reply_to": { event_id: target } },
              });
            }
          }
        } catch (err) {
          errors.push(String(err));
        }
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        else due = Date.now();
      }
    })();

    const probes = (async () => {
      while (running()) {
        const c = pick();
        const n = seq++;
        const mxText = `probe-mx-${n}`;
        const waText = `probe-wa-${n}`;
        const at = minutes();
        const sentAt = Date.now();
        try {
          await Promise.all([
            (async () => {
              await c.me.send(c.portal, "m.room.message", { msgtype: "m.text", body: mxText });
              remember(sentTexts.toWhatsApp, c, mxText);
              await waitFor(
                "probe at WhatsApp",
                async () =>
                  (await c.contact.received("message")).some((e) => textOf(e.data) === mxText),
                120_000,
              );
              latency.toWhatsApp.push({ atMin: at, value: Date.now() - sentAt });
            })(),
            (async () => {
              await c.contact.send({ type: "text", to: c.myJid, text: waText });
              remember(sentTexts.toMatrix, c, waText);
              await waitFor(
                "probe at Matrix",
                async () => (await c.me.events(c.portal)).some((e) => e.content["body"] === waText),
                120_000,
              );
              latency.toMatrix.push({ atMin: at, value: Date.now() - sentAt });
            })(),
          ]);
        } catch (err) {
          errors.push(String(err));
        }
        await sleep(2000);
      }
    })();

    const sampler = (async () => {
      let lastLog = Date.now();
      while (running()) {
        await sleep(10_000);
        memory.push({ atMin: minutes(), value: await rssMb(pid) });
        if (Date.now() - lastLog >= 60_000) {
          lastLog = Date.now();
          const recent = (s: Sample[]) =>
            s.filter((x) => x.atMin > minutes() - 1).map((x) => x.value);
          log(
            `${minutes().toFixed(1)} min: rss ${memory.at(-1)?.value.toFixed(1)} MB, ` +
              `latency p50 to WhatsApp ${percentile(recent(latency.toWhatsApp), 50)} ms, ` +
              `to Matrix ${percentile(recent(latency.toMatrix), 50)} ms, ${seq} sent, ${errors.length} errors`,
          );
        }
      }
    })();

    await Promise.all([background, probes, sampler]);
    log("traffic over; waiting for the last messages");

    // Completeness: every text arrived exactly once on the other side.
    let lost = 0;
    let duplicated = 0;
    let expected = 0;
    const check = async () => {
      lost = 0;
      duplicated = 0;
      expected = 0;
      for (const c of conversations) {
        const atWa = (await c.contact.received("message")).map((e) => textOf(e.data));
        const atMx = (await timeline(c.me, c.portal)).map((e) => String(e.content["body"] ?? ""));
        for (const [texts, arrived] of [
          [sentTexts.toWhatsApp.get(c) ?? [], atWa],
          [sentTexts.toMatrix.get(c) ?? [], atMx],
        ] as const) {
          for (const text of texts) {
            expected += 1;
            const times = arrived.filter((a) => a === text).length;
            if (times === 0) lost += 1;
            if (times > 1) duplicated += 1;
          }
        }
      }
      return lost === 0;
    };
    await waitFor("every message to arrive", check, 180_000).catch(() => undefined);

    const window = Math.max(1, Math.min(5, MINUTES / 4));
    const first = (s: Sample[]) => s.filter((x) => x.atMin <= window).map((x) => x.value);
    const last = (s: Sample[]) => s.filter((x) => x.atMin >= MINUTES - window).map((x) => x.value);
    const lat = (s: Sample[]) => ({
      probes: s.length,
      firstWindow: { p50: percentile(first(s), 50), p95: percentile(first(s), 95) },
      lastWindow: { p50: percentile(last(s), 50), p95: percentile(last(s), 95) },
      driftMsPerMin: Number(slope(s).toFixed(2)),
    });
    const report = {
      users: USERS,
      minutes: MINUTES,
      ratePerSecond: RATE,
      messagesSent: seq,
      textsChecked: expected,
      lost,
      duplicated,
      clientErrors: errors.length,
      memoryMb: {
        start: Number(memory[0]?.value.toFixed(1)),
        end: Number(memory.at(-1)?.value.toFixed(1)),
        max: Number(Math.max(...memory.map((m) => m.value)).toFixed(1)),
        growthMbPerMin: Number(slope(memory.filter((m) => m.atMin >= window)).toFixed(3)),
      },
      latencyMs: { toWhatsApp: lat(latency.toWhatsApp), toMatrix: lat(latency.toMatrix) },
      windowMinutes: window,
      bridgeWarnings: world.bridgeLog.split("\n").filter((l) => /\b(WARN|ERROR)\b/.test(l)).length,
    };
    log(`report:\n${JSON.stringify(report, null, 2)}`);
    if (errors.length > 0) log(`first client errors: ${errors.slice(0, 3).join(" | ")}`);
    if (REPORT !== undefined) await writeFile(REPORT, JSON.stringify(report, null, 2));
    process.exitCode = lost === 0 && duplicated === 0 ? 0 : 1;
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
