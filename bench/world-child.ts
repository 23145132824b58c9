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
import { createTestHomeserver, type TestHomeserver } from "../test/homeserver/index.js";
import { MatrixUser, WhatsAppUser } from "../scripts/demo/clients.js";
import type { ChildReply, ChildRequest, SentRecord, WorldPortal } from "./protocol.js";

const MATRIX_PHONE = "+491700000001";
const WAIT_MS = 60_000;

let hs: TestHomeserver | undefined;
let sim: Simulator | undefined;
let dir: string | undefined;
let adminToken = "";

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
    // A deployment's per-user rate limit would measure the limit, not the bridge.
    limits: { "messages-per-minute": 1_000_000_000, "max-unacked": 100_000 },
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
  const command = async (text: string, answer: RegExp) => {
    const before = (await me.events(mgmt)).length;
    await me.send(mgmt, "m.room.message", { msgtype: "m.text", body: text });
    return botSays(answer, before);
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
    await waitFor(`the first answer of ${phone} in its portal`, async () =>
      (await me.events(room)).find((e) => String(e.content["body"]).includes("bench hello back")),
    );
    portals.push({ room, phone, jid });
  }
  reply({ type: "ready", matrixUserId: registered.userId, myJid, portals });
}

/**
 * Sends `count` texts from the portals' WhatsApp users, round robin, at `rate` per second (0: all
 * at once; the simulator's own queue then sets the pace). Each text carries its sequence number.
 */
async function sendFromWhatsApp(request: Extract<ChildRequest, { type: "w2m" }>): Promise<void> {
  if (sim === undefined) throw new Error("w2m before start");
  const users = sim.users;
  const sent: SentRecord[] = [];
  let errors = 0;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let seq = 0; seq < request.count; seq++) {
    if (request.rate > 0) {
      const due = started + (seq * 1000) / request.rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const portal = request.portals[seq % request.portals.length] as WorldPortal;
    const content: ContentElement[] = [{ kind: "body", text: `${request.marker} ${seq}` }];
    pending.push(
      users.send(portal.phone as PhoneNumber, request.myJid as BareJid, content).then(
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

async function stop(): Promise<void> {
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
