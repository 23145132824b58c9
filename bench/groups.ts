/**
 * The group bench (issue #17): a 100-member group through the real bridge, against the floor.
 *
 * World: the demo world in this process (scripts/demo/world.ts: test homeserver, gatekeeper
 * simulator, the bridge on SQLite) with a second provider domain enlisted. The group: the Matrix
 * user of the bridge, the simulated WhatsApp user who creates it, a decrypting member at the
 * second provider (test/e2e/group-peer.ts) who checks that every message is readable, and
 * silent members at that provider (published keys; they acknowledge and do not decrypt, so that
 * the receivers' crypto does not take the CPU the bridge is measured on).
 *
 * Figures:
 * - Matrix -> group: messages per second from the first send (into the homeserver, 20 in flight)
 *   until the decrypting member has read the last; and deliveries per second (x members - 1).
 * - group -> Matrix: messages per second from the creator's first send until the last is in the
 *   portal.
 * - Fan-out per message, counted on the wire at the second provider: 1:1 header keys (pairwise
 *   encryptions by the bridge) and `<group>` ciphertexts. With sender keys (§17.4) the first
 *   message carries the key to every member device; every later one is a single group encryption,
 *   whatever the group's size.
 * - The floor, measured in the same run: one raw libsignal groupEncrypt + one SQLite commit + one
 *   loopback HTTP round trip per message (bench/floor.ts's parts), and what a per-member pairwise
 *   fan-out would cost instead.
 *
 * Alone: `npx tsx bench/groups.ts [--quick] [--members N] [--messages N]`.
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import {
  groupEncrypt,
  ProtocolAddress,
  SenderKeyDistributionMessage,
  SenderKeyRecord,
  SenderKeyStore,
  type Uuid,
} from "@signalapp/libsignal-client";
import { MatrixUser, WhatsAppUser } from "../scripts/demo/clients.js";
import { startDemoWorld, type DemoWorld } from "../scripts/demo/world.js";
import { localpartFromMatrixUserId } from "../src/interop/codec/jid.js";
import { driverStatements } from "../src/db/node-sqlite.js";
import { matrixUserId, phoneNumber, type BareJid } from "../src/util/ids.js";
import { GroupPeer } from "../test/e2e/group-peer.js";
import { measureFloor, type Floor } from "./floor.js";
import { connectPeers, memoryRelay } from "./signal-memory.js";

const OTHER = {
  id: "bench-other",
  name: "Bench Other Provider",
  domain: "other.example",
  secret: "bench-other-secret",
};
const MATRIX_PHONE = "+491700000001";
const CREATOR_PHONE = "+491709000000";
const WAIT_MS = 300_000;
const IN_FLIGHT = 20;

export interface GroupFigures {
  readonly members: number;
  readonly messages: number;
  readonly setupSeconds: number;
  /** The first message from Matrix: it distributes the sender key to every member device. */
  readonly firstMessageMs: number;
  readonly toGroup: {
    seconds: number;
    perSecond: number;
    deliveriesPerSecond: number;
    /** Until the gatekeeper accepted the last one: what the bridge put out. */
    acceptedPerSecond: number;
    cost: RunCost;
  };
  readonly fromGroup: {
    seconds: number;
    perSecond: number;
    /** The simulator's own send rate (its fan-out to every member included). */
    senderPerSecond: number;
    cost: RunCost;
  };
  readonly fanOut: {
    /** 1:1 header keys the bridge's first message carried to the second provider's members. */
    readonly firstMessageHeaderKeys: number;
    /** The same, per later message (0 when the sender key is reused). */
    readonly laterHeaderKeysPerMessage: number;
    /** Group encryptions per message (distinct `<group>` ciphertexts): 1. */
    readonly groupEncryptionsPerMessage: number;
  };
  readonly floor: {
    readonly groupEncryptUs: number;
    readonly pairwiseEncryptUs: number;
    readonly commitUs: number;
    readonly httpUs: number;
    /** groupEncrypt + commit + HTTP: one message with sender keys. */
    readonly perMessageUs: number;
    readonly messagesPerSecond: number;
    /** (members - 1) pairwise encryptions + commit + HTTP: the same message without them. */
    readonly perMemberFanOutUs: number;
  };
  /** The bridge's Matrix -> group output (accepted) as a fraction of the floor's rate. */
  readonly toGroupVsFloor: number;
}

/**
 * What one direction's run cost per message: CPU of the whole process (bridge, homeserver and
 * simulator share it), SQL statements of the bridge (every table but the simulator's `gk_*`)
 * and of the simulator. `BENCH_SQL=1` also lists the bridge's statements per message.
 */
export interface RunCost {
  readonly processCpuUsPerMessage: number;
  readonly bridgeStatementsPerMessage: number;
  readonly simulatorStatementsPerMessage: number;
  readonly bridgeSql?: Record<string, number>;
}

function costMeter(messages: number): () => RunCost {
  const cpu = process.cpuUsage();
  let bridge = 0;
  let simulator = 0;
  const sql = new Map<string, number>();
  const listing = process.env["BENCH_SQL"] === "1";
  driverStatements.tally = (text) => {
    if (text.includes("gk_")) simulator++;
    else {
      bridge++;
      if (listing) sql.set(text, (sql.get(text) ?? 0) + 1);
    }
  };
  return () => {
    driverStatements.tally = undefined;
    const used = process.cpuUsage(cpu);
    const per = (n: number) => Number((n / messages).toFixed(2));
    return {
      processCpuUsPerMessage: Math.round((used.user + used.system) / messages),
      bridgeStatementsPerMessage: per(bridge),
      simulatorStatementsPerMessage: per(simulator),
      ...(listing
        ? {
            bridgeSql: Object.fromEntries(
              [...sql].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k.slice(0, 160), per(v)]),
            ),
          }
        : {}),
    };
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - start > WAIT_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The bot's phone login for a plain Matrix user. */
async function login(world: DemoWorld, me: MatrixUser): Promise<void> {
  const bot = `@${world.config.appservice.bot.localpart}:${world.config.homeserver.domain}`;
  const mgmt = await me.createDm(bot);
  const command = async (text: string, answer: RegExp) => {
    const before = (await me.events(mgmt)).length;
    await me.send(mgmt, "m.room.message", { msgtype: "m.text", body: text });
    await waitFor(`the bot's answer to ${text}`, async () =>
      (await me.events(mgmt))
        .slice(before)
        .some((e) => e.sender === bot && answer.test(String(e.content["body"])))
        ? true
        : undefined,
    );
  };
  await waitFor("the bot's greeting", async () =>
    (await me.events(mgmt)).some((e) => e.sender === bot) ? true : undefined,
  );
  await command("login", /./);
  await command("phone", /phone number/i);
  await command(MATRIX_PHONE, /code/i);
  const admin = new WhatsAppUser(world.adminUrl, world.adminToken, MATRIX_PHONE, "");
  const code = await waitFor("the verification code", async () => {
    const answer = await admin.request("GET", `/_test/verification-codes/${MATRIX_PHONE.slice(1)}`);
    return answer.status === 200 ? String(answer.json["code"]) : undefined;
  });
  await command(code, /^Logged in/);
}

export async function measureGroups(
  options: { members?: number; messages?: number; floorMessages?: number } = {},
  say: (line: string) => void = () => undefined,
): Promise<GroupFigures> {
  const members = options.members ?? 100;
  const messages = options.messages ?? 300;
  const floor = await groupFloor(options.floorMessages ?? 1000, members);
  const setupStart = performance.now();
  const world = await startDemoWorld("alice", {
    extraProviders: [OTHER],
    config: {
      limits: {
        messages_per_minute: 1_000_000,
        new_chats_per_hour: 1_000_000,
        message_requests_per_hour: 1_000_000,
      },
    },
    simulatorLimits: { "messages-per-minute": 1_000_000 },
  });
  let peer: GroupPeer | undefined;
  try {
    const me = new MatrixUser(world.hs.url, world.user.userId, world.user.accessToken);
    await login(world, me);
    const myJid = `${localpartFromMatrixUserId(matrixUserId(world.user.userId))}@${world.config.interop.component_domain}`;
    peer = await GroupPeer.connect(world.sim.service, OTHER, "observer");
    // members = the Matrix user + the creator + the observer + the silent ones.
    const silent = await peer.addSilentUsers("silent", members - 3);
    const creator = phoneNumber(CREATOR_PHONE);
    await world.sim.users.create({ phone: creator });
    const invitesBefore = new Set(await me.invites());
    const info = await world.sim.users.createGroup(creator, "Bench group", [
      myJid as BareJid,
      peer.jid,
      ...silent,
    ]);
    const group = info.jid;
    if (info.participants.length !== members) {
      throw new Error(`the group has ${info.participants.length} members, not ${members}`);
    }
    const portal = await waitFor("the group portal invite", async () =>
      (await me.invites()).find((r) => !invitesBefore.has(r)),
    );
    await me.join(portal);
    const setupSeconds = (performance.now() - setupStart) / 1000;
    say(`  groups: ${members}-member group ready in ${setupSeconds.toFixed(1)} s`);

    // The first message from Matrix distributes the sender key to every member device.
    const run = randomUUID().slice(0, 6);
    const observer = peer;
    // Everything the second provider's members got, summed: header keys are the bridge's 1:1
    // encryptions for them (distribution stanzas included), ciphertexts its group encryptions.
    const totals = () => {
      let headerKeys = 0;
      let ciphertexts = 0;
      for (const d of observer.deliveries.values()) {
        headerKeys += d.headerKeys;
        if (d.groups > 0) ciphertexts += 1;
      }
      return { headerKeys, ciphertexts };
    };
    const acceptedFromMe = async () => {
      const [row] = (await world.sim.gatekeeper.ctx
        .knex("gk_group_messages")
        .where({ group_jid: group, sender: myJid, has_group: true })
        .count({ n: "*" })) as { n: number }[];
      return Number(row?.n ?? 0);
    };
    const beforeFirst = totals();
    const firstStart = performance.now();
    await me.send(portal, "m.room.message", { msgtype: "m.text", body: `first-${run}` });
    // A refusal comes back as the bot's notice in the portal: the run stops with it at once
    // instead of waiting out WAIT_MS for a message that will not come.
    await waitFor("the first message at the observer", async () => {
      const seen = observer.messages.find((m) => m.body === `first-${run}`);
      if (seen !== undefined) return seen;
      const notice = (await me.events(portal)).find(
        (e) =>
          e.content["msgtype"] === "m.notice" && String(e.content["body"]).startsWith("Not sent"),
      );
      if (notice !== undefined) {
        throw new Error(`the bridge refused the first message: ${String(notice.content["body"])}`);
      }
      return undefined;
    });
    const firstMessageMs = performance.now() - firstStart;
    const afterFirst = totals();

    // Matrix -> group.
    const toGroupStart = performance.now();
    const toGroupCost = costMeter(messages);
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (;;) {
          const n = next++;
          if (n >= messages) return;
          await me.send(portal, "m.room.message", { msgtype: "m.text", body: `m-${run}-${n}` });
        }
      }),
    );
    const prefix = `m-${run}-`;
    await waitFor("every Matrix message accepted at the gatekeeper", async () =>
      (await acceptedFromMe()) >= messages + 1 ? true : undefined,
    );
    const acceptedSeconds = (performance.now() - toGroupStart) / 1000;
    await waitFor("every Matrix message at the observer", () =>
      observer.messages.filter((m) => m.body?.startsWith(prefix) === true).length >= messages
        ? true
        : undefined,
    );
    const toGroupSeconds = (performance.now() - toGroupStart) / 1000;
    const toGroupRun = toGroupCost();
    say(
      `  groups: Matrix -> group ${(messages / toGroupSeconds).toFixed(0)} msg/s ` +
        `(${((messages * (members - 1)) / toGroupSeconds).toFixed(0)} deliveries/s)`,
    );
    const afterLater = totals();

    // group -> Matrix.
    const fromGroupStart = performance.now();
    const fromGroupCost = costMeter(messages);
    const wPrefix = `w-${run}-`;
    for (let n = 0; n < messages; n++) {
      await world.sim.users.sendToGroup(creator, group, [{ kind: "body", text: `${wPrefix}${n}` }]);
    }
    const simSendSeconds = (performance.now() - fromGroupStart) / 1000;
    await waitFor("every WhatsApp message in the portal", async () => {
      const events = await me.events(portal);
      const got = events.filter((e) => String(e.content["body"] ?? "").startsWith(wPrefix));
      return got.length >= messages ? true : undefined;
    });
    const fromGroupSeconds = (performance.now() - fromGroupStart) / 1000;
    const fromGroupRun = fromGroupCost();
    say(`  groups: group -> Matrix ${(messages / fromGroupSeconds).toFixed(0)} msg/s`);

    const toGroupPerSecond = messages / toGroupSeconds;
    return {
      members,
      messages,
      setupSeconds,
      firstMessageMs,
      toGroup: {
        seconds: toGroupSeconds,
        perSecond: toGroupPerSecond,
        deliveriesPerSecond: (messages * (members - 1)) / toGroupSeconds,
        acceptedPerSecond: messages / acceptedSeconds,
        cost: toGroupRun,
      },
      fromGroup: {
        seconds: fromGroupSeconds,
        perSecond: messages / fromGroupSeconds,
        senderPerSecond: messages / simSendSeconds,
        cost: fromGroupRun,
      },
      fanOut: {
        firstMessageHeaderKeys: afterFirst.headerKeys - beforeFirst.headerKeys,
        laterHeaderKeysPerMessage: (afterLater.headerKeys - afterFirst.headerKeys) / messages,
        // The gatekeeper copies a message's one <group> element to every member: one origin-id
        // with a ciphertext is one encryption, however many members it reached.
        groupEncryptionsPerMessage: (afterLater.ciphertexts - afterFirst.ciphertexts) / messages,
      },
      floor,
      toGroupVsFloor: messages / acceptedSeconds / floor.messagesPerSecond,
    };
  } finally {
    await peer?.close().catch(() => undefined);
    await world.stop();
  }
}

class MemorySenderKeys extends SenderKeyStore {
  private readonly records = new Map<string, SenderKeyRecord>();
  async saveSenderKey(sender: ProtocolAddress, id: Uuid, record: SenderKeyRecord) {
    this.records.set(`${sender.toString()}/${id}`, record);
  }
  async getSenderKey(sender: ProtocolAddress, id: Uuid): Promise<SenderKeyRecord | null> {
    return this.records.get(`${sender.toString()}/${id}`) ?? null;
  }
}

/** The floor of one group message, and of the same message fanned out pairwise. */
async function groupFloor(count: number, members: number): Promise<GroupFigures["floor"]> {
  const base: Floor = await measureFloor(count);
  // Raw groupEncrypt with an in-memory sender key store, after a warm-up.
  const store = new MemorySenderKeys();
  const address = ProtocolAddress.new("bench@matrix.bridge.example", 1);
  const distributionId = randomUUID();
  await SenderKeyDistributionMessage.create(address, distributionId, store);
  const body = new Uint8Array(Buffer.from(`<envelope>${"x".repeat(300)}</envelope>`));
  const warmup = Math.min(200, Math.floor(count / 5));
  let start = 0;
  for (let i = 0; i < warmup + count; i++) {
    if (i === warmup) start = performance.now();
    await groupEncrypt(address, distributionId, store, body);
  }
  const groupEncryptUs = ((performance.now() - start) * 1000) / count;
  // Pairwise: one 1:1 encrypt (the floor's crypto part is a decrypt plus an encrypt).
  const relay = memoryRelay();
  const { p1 } = await connectPeers(relay);
  start = performance.now();
  for (let i = 0; i < count; i++) await relay.encrypt(p1, body);
  const pairwiseEncryptUs = ((performance.now() - start) * 1000) / count;
  const perMessageUs = groupEncryptUs + base.commitUs + base.httpUs;
  return {
    groupEncryptUs,
    pairwiseEncryptUs,
    commitUs: base.commitUs,
    httpUs: base.httpUs,
    perMessageUs,
    messagesPerSecond: 1e6 / perMessageUs,
    perMemberFanOutUs: (members - 1) * pairwiseEncryptUs + base.commitUs + base.httpUs,
  };
}

/** The figures as lines for the bench's text report. */
export function groupReport(g: GroupFigures): string {
  const f = g.floor;
  return [
    `groups: a ${g.members}-member group (${g.messages} messages each way), set up in ${g.setupSeconds.toFixed(1)} s`,
    `  Matrix -> group   ${g.toGroup.perSecond.toFixed(1)} msg/s read at a member (${g.toGroup.deliveriesPerSecond.toFixed(0)} deliveries/s); ` +
      `${g.toGroup.acceptedPerSecond.toFixed(1)} msg/s accepted from the bridge, ` +
      `${(g.toGroupVsFloor * 100).toFixed(1)} % of the floor's ${f.messagesPerSecond.toFixed(0)} msg/s`,
    `  group -> Matrix   ${g.fromGroup.perSecond.toFixed(1)} msg/s in the portal (the simulator sent ${g.fromGroup.senderPerSecond.toFixed(1)} msg/s)`,
    ...(
      [
        ["Matrix -> group", g.toGroup.cost],
        ["group -> Matrix", g.fromGroup.cost],
      ] as const
    ).map(
      ([what, c]) =>
        `  ${what} per message: ${c.processCpuUsPerMessage} µs CPU (whole process), ` +
        `${c.bridgeStatementsPerMessage} bridge + ${c.simulatorStatementsPerMessage} simulator statements`,
    ),
    `  first message (sender key to every member device): ${g.firstMessageMs.toFixed(0)} ms, ` +
      `${g.fanOut.firstMessageHeaderKeys} header keys to the second provider's members`,
    `  later messages: ${g.fanOut.groupEncryptionsPerMessage.toFixed(2)} group encryption and ` +
      `${g.fanOut.laterHeaderKeysPerMessage.toFixed(2)} header keys per message`,
    `  floor per message: groupEncrypt ${f.groupEncryptUs.toFixed(0)} µs + commit ${f.commitUs.toFixed(0)} µs + ` +
      `HTTP ${f.httpUs.toFixed(0)} µs = ${f.perMessageUs.toFixed(0)} µs; fanned out pairwise to ` +
      `${g.members - 1} members it would be ${(f.perMemberFanOutUs / 1000).toFixed(1)} ms`,
  ].join("\n");
}

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes("--quick");
  const value = (name: string) => {
    const at = argv.indexOf(`--${name}`);
    return at < 0 ? undefined : Number(argv[at + 1]);
  };
  const figures = await measureGroups(
    {
      members: value("members") ?? 100,
      messages: value("messages") ?? (quick ? 50 : 300),
      floorMessages: quick ? 300 : 1000,
    },
    (line) => process.stdout.write(`${line}\n`),
  );
  process.stdout.write(`\n${groupReport(figures)}\n`);
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(
      `group bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  }
  process.exit();
}
