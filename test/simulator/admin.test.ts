import assert from "node:assert/strict";
import {
  classifyMessage,
  encodeConfirmCode,
  encodeRequestCode,
} from "../../src/interop/codec/index.js";
import type { PhoneNumber } from "../../src/util/ids.js";
import { ALICE, child } from "./harness.js";
import { text } from "./provider-user.js";
import { delivery, eventually, GK, makeWorld, type World } from "./world.js";

const TOKEN = "admin-secret";

describe("simulator: admin HTTP API", function () {
  this.timeout(30000);
  let w: World;
  let base: string;

  beforeEach(async function () {
    w = await makeWorld({ admin: { token: TOKEN } });
    base = String(w.sim.admin?.url);
  });
  afterEach(async function () {
    await w.close();
  });

  const call = async (
    method: string,
    path: string,
    body?: unknown,
    token: string | null = TOKEN,
  ) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("serves verification codes exactly as Appendix A, without a token", async function () {
    assert.equal(
      (await call("GET", "/_test/verification-codes/491709876543", undefined, null)).status,
      404,
    );
    await w.provider.iq(
      "set",
      encodeRequestCode({ phone: "+491709876543" as PhoneNumber, channel: "sms", lang: undefined }),
    );
    const got = await call("GET", "/_test/verification-codes/491709876543", undefined, null);
    assert.equal(got.status, 200);
    assert.deepEqual(Object.keys(got.body).sort(), ["code", "expires", "phone"]);
    assert.equal(got.body.phone, "+491709876543");
    const bound = await w.provider.iq(
      "set",
      encodeConfirmCode({ phone: "+491709876543" as PhoneNumber, code: String(got.body.code) }),
    );
    assert.equal(child(bound).name, "bound");
  });

  it("refuses requests without the bearer token and names errors with stable codes", async function () {
    assert.deepEqual((await call("GET", "/queue", undefined, null)).body.error, "unauthorized");
    assert.equal((await call("GET", "/queue", undefined, "wrong")).status, 401);
    assert.equal((await call("GET", "/nowhere")).status, 404);
    const bad = await call("POST", "/users", { phone: "12345" });
    assert.deepEqual([bad.status, bad.body.error], [400, "invalid-request"]);
    const dup = await call("POST", "/users", { phone: "+491701234567" });
    assert.deepEqual([dup.status, dup.body.error], [409, "user-exists"]);
    assert.equal((await call("GET", "/users/491700000000")).body.error, "no-such-user");
  });

  it("creates users, manages devices and opt-in, and sends as a user", async function () {
    const created = await call("POST", "/users", {
      phone: "+491707777777",
      devices: 2,
      allowedProviders: ["matrix-bridge-example"],
    });
    assert.equal(created.status, 201);
    assert.equal((created.body.devices as number[]).length, 2);
    const added = await call("POST", "/users/491707777777/devices");
    assert.equal(added.status, 201);
    const removed = await call(
      "DELETE",
      `/users/491707777777/devices/${String(added.body.device)}`,
    );
    assert.equal((removed.body.devices as number[]).length, 2);
    const off = await call("PUT", "/users/491707777777/opt-in", { optedIn: false });
    assert.equal(off.body.optedIn, false);
    await call("PUT", "/users/491707777777/opt-in", { optedIn: true });
    const mark = w.provider.received.length;
    const sent = await call("POST", "/users/491707777777/send", {
      type: "text",
      to: ALICE,
      text: "from the API",
    });
    assert.equal(sent.status, 200);
    const d = await delivery(w.provider, "encrypted", mark);
    const m = classifyMessage(d);
    assert.equal(m.payload.kind, "encrypted");
    if (m.payload.kind === "encrypted") {
      assert.deepEqual(
        await w.alice.decrypt("491707777777@wa.example" as never, m.payload.encrypted),
        text("from the API"),
      );
    }
  });

  it("sends media that the provider can fetch from the media store", async function () {
    const data = Buffer.from("hello media").toString("base64");
    const mark = w.provider.received.length;
    const sent = await call("POST", "/users/491701234567/send", {
      type: "media",
      to: ALICE,
      kind: "document",
      data,
      mime: "text/plain",
      filename: "a.txt",
      caption: "see",
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const d = classifyMessage(await delivery(w.provider, "encrypted", mark));
    assert.equal(d.payload.kind, "encrypted");
    if (d.payload.kind !== "encrypted") return;
    const content = await w.alice.decrypt(GK, d.payload.encrypted);
    const media = content.find((c) => c.kind === "media");
    assert.ok(media !== undefined && media.kind === "media");
    assert.ok(media.media.url.startsWith(String(w.sim.media?.origin)));
    const blob = await fetch(media.media.url);
    assert.equal(blob.status, 200);
    assert.equal((await blob.arrayBuffer()).byteLength, 16 * (Math.floor(11 / 16) + 1) + 10);
  });

  it("sends a location, a contact card, a call notice and a disappearing setting; refuses bad values", async function () {
    const sends = [
      { type: "location", lat: 52.52, lon: 13.405, name: "Alexanderplatz" },
      { type: "contact", vcards: ["BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol\r\nEND:VCARD\r\n"] },
      { type: "call", callId: "c-1", media: "audio", outcome: "missed" },
      { type: "disappearing", timer: 86400 },
    ];
    for (const body of sends) {
      const mark = w.provider.received.length;
      const sent = await call("POST", "/users/491701234567/send", { to: ALICE, ...body });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      const d = classifyMessage(await delivery(w.provider, "encrypted", mark));
      assert.equal(d.payload.kind, "encrypted");
      if (d.payload.kind !== "encrypted") return;
      const content = await w.alice.decrypt(GK, d.payload.encrypted);
      assert.equal(content[0]?.kind, body.type);
    }
    for (const bad of [
      { type: "location", lat: 91, lon: 0 },
      { type: "disappearing", timer: 5 },
      { type: "call", callId: "c-2", media: "hologram", outcome: "missed" },
      { type: "media", kind: "audio", data: "", mime: "audio/ogg", waveform: [1, 2, 3] },
    ]) {
      const refused = await call("POST", "/users/491701234567/send", { to: ALICE, ...bad });
      assert.equal(refused.status, 400, JSON.stringify(bad));
      assert.equal(refused.body["error"], "invalid-request");
    }
  });

  it("reads what a user received, accepts requests, blocks, reports and shows the queue", async function () {
    const { stanza } = await w.alice.message(GK, text("hi api"));
    await w.provider.outcome(stanza);
    const received = await eventually(async () => {
      const r = await call("GET", "/users/491701234567/received?kind=message");
      return (r.body.entries as unknown[]).length > 0 ? r : undefined;
    });
    const entry = (received.body.entries as { data: { envelope: string } }[])[0];
    assert.match(String(entry?.data.envelope), /hi api/);
    assert.equal((await call("POST", `/users/491701234567/requests/${ALICE}/accept`)).status, 200);
    assert.equal((await call("POST", `/users/491701234567/requests/${ALICE}/accept`)).status, 404);
    assert.equal((await call("POST", "/users/491701234567/blocks", { jid: ALICE })).status, 200);
    assert.equal((await call("DELETE", `/users/491701234567/blocks/${ALICE}`)).status, 200);
    assert.equal(
      (await call("POST", "/users/491701234567/reports", { jid: ALICE, reason: "spam" })).status,
      201,
    );
    const reports = await call("GET", "/reports");
    assert.equal((reports.body.reports as { reason: string }[])[0]?.reason, "spam");
    const queue = await call("GET", "/queue");
    assert.equal(typeof queue.body.depth, "number");
  });
  it("creates, changes and sends in groups for WhatsApp users; refusals keep their §18 condition", async function () {
    await call("POST", "/users", { phone: "+491705550000" });
    const created = await call("POST", "/users/491701234567/groups", {
      subject: "Admin group",
      participants: [ALICE],
    });
    assert.equal(created.status, 201);
    const jid = String(created.body.jid);
    const added = await call("POST", `/users/491701234567/groups/${jid}/add`, {
      participants: ["491705550000@wa.example"],
    });
    assert.equal((added.body.participants as unknown[]).length, 3);
    const notAdmin = await call("PUT", `/users/491705550000/groups/${jid}/subject`, {
      subject: "x",
    });
    assert.deepEqual([notAdmin.status, notAdmin.body.error], [403, "not-admin"]);
    const sent = await call("POST", `/users/491701234567/groups/${jid}/send`, { text: "hi" });
    assert.equal(sent.status, 201);
    await w.provider.waitFor(
      (s) =>
        s.attrs.from === jid &&
        s.children.some((c) => typeof c !== "string" && c.name === "encrypted"),
    );
    const left = await call("POST", `/users/491701234567/groups/${jid}/leave`);
    assert.equal(left.status, 200);
    const view = await call("GET", `/groups/${jid}`);
    // The creator left: the longest-standing member (Alice) is admin now.
    assert.deepEqual(
      (view.body.participants as { jid: string; role: string }[]).map((p) => [p.jid, p.role]),
      [
        [ALICE, "admin"],
        ["491705550000@wa.example", "member"],
      ],
    );
  });
});
