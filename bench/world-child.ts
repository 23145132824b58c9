/**
 * The world around the bridge under benchmark, in a process of its own so that the bridge's
 * process spends its CPU on the bridge only: the in-process test homeserver and the embedded
 * gatekeeper simulator with its simulated WhatsApp users. Driven by bench/flows.ts over the
 * fork IPC channel (messages typed in bench/protocol.ts).
 *
 * The simulated users send through the simulator's in-process API (SimulatedUsers.send), not its
 * admin HTTP API, so that the admin server's JSON/HTTP handling is not what limits the rate.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ContentElement } from "../src/interop/codec/index.js";
import { localpartFromMatrixUserId } from "../src/interop/codec/jid.js";
import { matrixUserId, type BareJid, type PhoneNumber } from "../src/util/ids.js";
import { startSimulator, type Simulator } from "../simulator/main.js";
import type { PreparedSend } from "../simulator/users/send.js";
import { createTestHomeserver, type TestHomeserver } from "../test/homeserver/index.js";
import { MatrixUser, WhatsAppUser } from "../scripts/demo/clients.js";
import type { ChildReply, ChildRequest, SentRecord, WorldPortal } from "./protocol.js";
import { UserDevice } from "./user-device.js";

const MATRIX_PHONE = "+491700000001";
const WAIT_MS = 60_000;

let hs: TestHomeserver | undefined;
let sim: Simulator | undefined;
let dir: string | undefined;
let adminToken = "";
/** The user's device, in encrypted runs. */
let device: UserDevice | undefined;
/** Room -> its joined members, for sharing the user's room key. */
const members = new Map<string, string[]>();

function reply(message: ChildReply): void {
  process.send?.(message);
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - start > WAIT_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function start(request: Extract<ChildRequest, { type: "start" }>): Promise<void> {
  dir = await mkdtemp(path.join(tmpdir(), "mwi-bench-world-"));
  adminToken = request.adminToken;
  hs = createTestHomeserver({
    serverName: request.domain,
    appservices: [request.registration],
    retryInitialMs: 20,
    retryMaxMs: 500,
  });
  await hs.start();
  sim = await startSimulator({
    providers: [request.provider],
    dataDir: path.join(dir, "simulator"),
    admin: { token: adminToken },
    media: false,
    // A deployment's per-user rate limit would measure the limit, not the bridge; the daily and
    // hourly quotas on new contacts (50 lookups and 50 new conversations a day for a verified
    // user, bundles per hour) would stop a run with more portals.
    limits: {
      "messages-per-minute": 1_000_000_000,
      "max-unacked": 100_000,
      "lookups-per-day": 1_000_000_000,
      "lookups-per-day-provider": 1_000_000_000,
      "new-conversations-per-day": 1_000_000_000,
      "key-fetches-per-hour": 1_000_000_000,
      "prekey-handouts-per-hour": 1_000_000_000,
    },
    tickIntervalMs: 500,
  });
  reply({ type: "started", hsUrl: hs.url, service: sim.service });
}

async function setup(request: Extract<ChildRequest, { type: "setup" }>): Promise<void> {
  if (hs === undefined || sim === undefined || sim.admin === undefined) {
    throw new Error("setup before start");
  }
  const users = sim.users;
  const registered = hs.registerUser("bench", "bench-password");
  const me = new MatrixUser(hs.url, registered.userId, registered.accessToken);
  // Before any portal exists, so that the bridge's ghosts share their room keys with it.
  if (request.encrypted) device = await UserDevice.create(hs.url, registered);
  const myJid = `${localpartFromMatrixUserId(matrixUserId(registered.userId))}@${request.componentDomain}`;
  const phones: PhoneNumber[] = [];
  for (let i = 0; i < request.contacts; i++) {
    const phone = `+4917020${String(i).padStart(5, "0")}` as PhoneNumber;
    await users.create({ phone });
    phones.push(phone);
  }
  const mgmt = await me.createDm(request.botUserId);
  const botSays = async (pattern: RegExp, after: number) =>
    waitFor(`the bot to answer ${pattern}`, async () =>
      (await me.events(mgmt))
        .slice(after)
        .find((e) => e.sender === request.botUserId && pattern.test(String(e.content["body"]))),
    );
  // The newest events first, and only those after the command: `me.events` reads the room from
  // its start, 1,000 events at most, which a run with ~500 portals fills with commands and answers.
  const command = async (text: string, answer: RegExp) => {
    const sent = await me.send(mgmt, "m.room.message", { msgtype: "m.text", body: text });
    return waitFor(`the bot to answer ${answer}`, async () => {
      const page = await me.request(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(mgmt)}/messages?dir=b&limit=50`,
      );
      const newest =
        (page.json["chunk"] as
          { event_id: string; sender: string; content: Record<string, unknown> }[] | undefined) ??
        [];
      const mine = newest.findIndex((e) => e.event_id === sent);
      return newest
        .slice(0, mine === -1 ? newest.length : mine)
        .find((e) => e.sender === request.botUserId && answer.test(String(e.content["body"])));
    });
  };
  await botSays(/login/, 0);
  await command("login", /./);
  await command("phone", /phone number/i);
  await command(MATRIX_PHONE, /code/i);
  const admin = new WhatsAppUser(sim.admin.url, adminToken, MATRIX_PHONE, "");
  const code = await waitFor("the verification code", async () => {
    const answer = await admin.request("GET", `/_test/verification-codes/${MATRIX_PHONE.slice(1)}`);
    return answer.status === 200 ? String(answer.json["code"]) : undefined;
  });
  await command(code, /^Logged in/);

  const portals: WorldPortal[] = [];
  for (const phone of phones) {
    const jid = users.jidOf(phone);
    const before = new Set(await me.invites());
    await command(`start-chat ${phone}`, /Invited you|already have a chat/);
    const room = await waitFor("the portal invite", async () =>
      (await me.invites()).find((r) => !before.has(r)),
    );
    await me.join(room);
    // First message both ways: the request is accepted and both sides leave the PreKey phase.
    await me.send(room, "m.room.message", { msgtype: "m.text", body: "bench hello" });
    await waitFor(`the first message at ${phone}`, async () =>
      (await users.received(phone, "message")).find((e) =>
        JSON.stringify(e.data).includes("bench hello"),
      ),
    );
    await users.acceptRequest(phone, myJid as BareJid);
    await users.send(phone, myJid as BareJid, [{ kind: "body", text: "bench hello back" }]);
    await waitFor(`the first answer of ${phone} in its portal`, async () => {
      for (const e of await me.events(room)) {
        if (String(e.content["body"]).includes("bench hello back")) return true;
        if (device !== undefined && e.type === "m.room.encrypted") {
          await device.sync();
          const clear = await device.decrypt(e as unknown as Record<string, unknown>, room);
          if (String(clear?.["body"]).includes("bench hello back")) return true;
        }
      }
      return undefined;
    });
    if (device !== undefined) {
      const joined = ok(
        await me.request(
          "GET",
          `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`,
        ),
      );
      members.set(room, Object.keys(joined["joined"] as Record<string, unknown>));
    }
    portals.push({ room, phone, jid });
  }
  reply({ type: "ready", matrixUserId: registered.userId, myJid, portals });
}

/**
 * Sends `count` texts from the portals' WhatsApp users, round robin, at `rate` per second (0: all
 * at once; the simulator's own queue then sets the pace). Each text carries its sequence number.
 * The texts are Signal-encrypted first, all of them, before the first is sent (issue #15): this
 * process shares the machine's cores with the bridge, and encrypting while sending made the
 * sender, not the bridge, the limit of the run. `durationMs` is the sending alone.
 */
async function sendFromWhatsApp(request: Extract<ChildRequest, { type: "w2m" }>): Promise<void> {
  if (sim === undefined) throw new Error("w2m before start");
  const users = sim.users;
  const sent: SentRecord[] = [];
  let errors = 0;
  const prepared: Promise<PreparedSend>[] = [];
  for (let seq = 0; seq < request.count; seq++) {
    const portal = request.portals[seq % request.portals.length] as WorldPortal;
    const content: ContentElement[] = [{ kind: "body", text: `${request.marker} ${seq}` }];
    prepared.push(users.prepare(portal.phone as PhoneNumber, request.myJid as BareJid, content));
  }
  const ready = await Promise.allSettled(prepared);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let seq = 0; seq < request.count; seq++) {
    if (request.rate > 0) {
      const due = started + (seq * 1000) / request.rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const outcome = ready[seq];
    if (outcome?.status !== "fulfilled") {
      errors += 1;
      continue;
    }
    pending.push(
      users.deliver(outcome.value).then(
        (result) => {
          sent.push({ seq, originId: result.originId });
        },
        () => {
          errors += 1;
        },
      ),
    );
  }
  await Promise.all(pending);
  reply({
    type: "w2m-done",
    sent,
    errors,
    durationMs: performance.now() - started,
  });
}

function ok(answer: { status: number; json: Record<string, unknown> }): Record<string, unknown> {
  if (answer.status !== 200) throw new Error(`homeserver answered ${answer.status}`);
  return answer.json;
}

/** The contents of m.room.encrypted events for `texts`, in order, as the user's device. */
async function encrypt(request: Extract<ChildRequest, { type: "encrypt" }>): Promise<void> {
  if (device === undefined) throw new Error("encrypt in a plaintext world");
  const byRoom = new Map<string, string[]>();
  for (const { room, text } of request.texts) byRoom.set(room, [...(byRoom.get(room) ?? []), text]);
  const encrypted = new Map<string, Record<string, unknown>[]>();
  for (const [room, texts] of byRoom) {
    encrypted.set(room, await device.encryptTexts(room, members.get(room) ?? [], texts));
  }
  const contents = request.texts.map(({ room }) => encrypted.get(room)?.shift() ?? {});
  reply({ type: "encrypted", contents });
}

/**
 * The probe: what the bridge posted into the portals, decrypted as the user's device. Counts
 * the events of this run (their text starts with `marker`) and those the device cannot decrypt.
 */
async function verify(request: Extract<ChildRequest, { type: "verify" }>): Promise<void> {
  if (hs === undefined || device === undefined) throw new Error("verify in a plaintext world");
  await device.sync();
  let decrypted = 0;
  let undecryptable = 0;
  for (const portal of request.portals) {
    let from: string | undefined;
    for (;;) {
      const page = (await device.call(
        "GET",
        `/rooms/${encodeURIComponent(portal.room)}/messages?dir=b&limit=1000${from === undefined ? "" : `&from=${encodeURIComponent(from)}`}`,
      )) as { chunk?: Record<string, unknown>[]; end?: string };
      const chunk = page.chunk ?? [];
      let older = false;
      for (const event of chunk) {
        if (event["type"] !== "m.room.encrypted" || event["sender"] === device.userId) continue;
        const clear = await device.decrypt(event, portal.room);
        if (clear === undefined) undecryptable += 1;
        else if (String(clear["body"]).startsWith(`${request.marker} `)) decrypted += 1;
        else older = true;
      }
      // Newest first: once events of earlier runs show up, this run's are all counted.
      if (older || chunk.length === 0 || page.end === undefined) break;
      from = page.end;
    }
  }
  reply({ type: "verified", decrypted, undecryptable });
}

async function stop(): Promise<void> {
  device?.close();
  await sim?.stop().catch(() => undefined);
  await hs?.stop().catch(() => undefined);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  reply({ type: "stopped" });
  process.disconnect?.();
}

process.on("message", (raw) => {
  const request = raw as ChildRequest;
  const handle = async () => {
    switch (request.type) {
      case "start":
        return start(request);
      case "setup":
        return setup(request);
      case "w2m":
        return sendFromWhatsApp(request);
      case "encrypt":
        return encrypt(request);
      case "verify":
        return verify(request);
      case "stop":
        return stop();
    }
  };
  handle().catch((err: unknown) => {
    reply({
      type: "error",
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  });
});
reply({ type: "hello" });
