import assert from "node:assert/strict";
import type { RemoteUserId } from "../../../src/core/network.js";
import { SendRefusedError } from "../../../src/interop/connector/failures.js";
import { InteropUsersTable } from "../../../src/interop/store/interop-users.js";
import type { InteropLogin } from "../../../src/interop/connector/login.js";
import { BridgeError } from "../../../src/util/errors.js";
import { matrixUserId, phoneNumber, type BareJid } from "../../../src/util/ids.js";
import { eventually, startWorld, type World } from "./harness.js";

const text = (t: string) => ({ type: "text" as const, text: { text: t, spans: [] } });

describe("interop connector against the gatekeeper simulator", function () {
  this.timeout(20_000);
  let world: World;
  const alice = matrixUserId("@alice:example.org");
  const alicePhone = phoneNumber("+491709876543");
  const bobPhone = phoneNumber("+491701234567");

  beforeEach(async function () {
    // Logging in twice asks for two codes within a minute.
    world = await startWorld({ "verification-interval-seconds": 0 });
    await world.sim.users.create({ phone: bobPhone, devices: 1 });
  });

  afterEach(async function () {
    await world.stop();
  });

  async function loginByPhone(): Promise<InteropLogin> {
    const process = world.connector.createLogin(alice, "phone");
    const first = await process.start();
    assert.equal(first.type, "input");
    assert.equal(first.type === "input" && first.fields[0]?.id, "phone");
    const codeStep = await process.submit("phone", { phone: alicePhone });
    assert.equal(codeStep.type === "input" && codeStep.stepId, "code");
    // Numbers read one way in every notice: the readable international form.
    assert.match(codeStep.instructions, /sent a code to \+49 170 9876543\./);
    const sent = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
    assert.ok(sent !== undefined, "the simulator sent a code");
    const done = await process.submit("code", { code: sent.code });
    assert.equal(done.type, "complete");
    assert.match(done.instructions, /Logged in to WhatsApp as \+49 170 9876543\./);
    return done.type === "complete" ? (done.login as InteropLogin) : assert.fail();
  }

  it("logs in by phone with the code the gatekeeper sent, bound to that number", async function () {
    const login = await loginByPhone();
    assert.equal(login.user, alice);
    assert.equal(login.state().code, "connected");
    assert.equal(await world.connector.engine.account.binding(login.jid), alicePhone);
    // The provider localpart and device are recorded in the interop-owned table (migration 0015).
    assert.deepEqual(await new InteropUsersTable(world.db.db.knex).get(alice), {
      mxid: alice,
      localpart: "alice=3aexample.org",
      deviceId: 1,
    });
    assert.equal(`${"alice=3aexample.org"}@${login.jid.split("@")[1]}`, login.jid);
    const resolved = await login.resolveAddress(bobPhone);
    assert.deepEqual(resolved, {
      reachable: true,
      contact: world.sim.users.jidOf(bobPhone) as string as RemoteUserId,
    });
  });

  it("a wrong code is shown to the user with the attempts left and the step is asked again", async function () {
    const process = world.connector.createLogin(alice, "phone");
    await process.start();
    await process.submit("phone", { phone: alicePhone });
    const sent = await world.sim.gatekeeper.services.identity.latestCode(alicePhone);
    const wrong = sent?.code === "000000" ? "111111" : "000000";
    await assert.rejects(
      process.submit("code", { code: wrong }),
      (err: unknown) => err instanceof BridgeError && /attempt\(s\) left/.test(err.message),
    );
    const done = await process.submit("code", { code: sent?.code ?? "" });
    assert.equal(done.type, "complete");
  });

  it("carries a text each way: the contact gets it, and the reply reaches the core as a message", async function () {
    const login = await loginByPhone();
    const bob = world.sim.users.jidOf(bobPhone);
    const id = await login.sendMessage(bob as string as RemoteUserId, text("hello bob"));
    await eventually(async () => {
      const got = await world.sim.users.received(bobPhone, "message");
      return got.some((e) => e.data["originId"] === id);
    }, "bob got the message");
    const [entry] = await world.sim.users.received(bobPhone, "message");
    assert.deepEqual(entry?.data["content"], [{ kind: "body", text: "hello bob" }]);

    await world.sim.users.send(bobPhone, login.jid, [{ kind: "body", text: "hi alice" }]);
    await eventually(() => world.core.of("message").length === 1, "the reply reported");
    const [message] = world.core.of("message");
    assert.equal(message?.from, bob);
    assert.deepEqual(message?.content, text("hi alice"));
    assert.equal(world.core.reported.find((r) => r.event.kind === "message")?.user, alice);
  });

  it("a message to a contact who blocked the user is reported as send-failed with reason blocked", async function () {
    const login = await loginByPhone();
    await world.sim.users.block(bobPhone, login.jid);
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    const id = await login.sendMessage(bob, text("are you there?"));
    await eventually(() => world.core.of("send-failed").length === 1, "the failure reported");
    const [failure] = world.core.of("send-failed");
    assert.equal(failure?.target.id, id);
    assert.equal(failure?.reason.code, "blocked");
  });

  it("a text above the gatekeeper's body limit is refused at once as too-large", async function () {
    const login = await loginByPhone();
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    await assert.rejects(
      login.sendMessage(bob, text("x".repeat(20_000))),
      (err: unknown) => err instanceof SendRefusedError && err.failure.code === "too-large",
    );
  });

  it("acks a delivery only after the core handled it: held back, it is reported once released", async function () {
    const login = await loginByPhone();
    let release: () => void = () => undefined;
    world.core.gate = new Promise((resolve) => (release = resolve));
    await world.sim.users.send(bobPhone, login.jid, [{ kind: "body", text: "wait for me" }]);
    await eventually(
      async () =>
        (await world.db.db.knex("inbox").whereNotNull("pending_since").count("* as n"))[0]?.n !== 0,
      "the message is decrypted and pending",
    );
    assert.equal(world.core.of("message").length, 0);
    release();
    world.core.gate = undefined;
    await eventually(() => world.core.of("message").length === 1, "reported after release");
    await eventually(
      async () =>
        Number(
          (await world.db.db.knex("inbox").whereNotNull("pending_since").count("* as n"))[0]?.n,
        ) === 0,
      "the pending hand-over completed",
    );
  });

  it("reactions, edits and read markers reach the contact; typing from the contact reaches the core", async function () {
    const login = await loginByPhone();
    const bob = world.sim.users.jidOf(bobPhone) as BareJid;
    const to = bob as string as RemoteUserId;
    await world.sim.users.send(bobPhone, login.jid, [{ kind: "body", text: "react to me" }]);
    await eventually(() => world.core.of("message").length === 1, "bob's message reported");
    const incoming = world.core.of("message")[0];
    assert.ok(incoming !== undefined);
    await login.sendReactions(to, { author: incoming.from, id: incoming.id }, ["👍"]);
    await login.sendRead(to, { author: incoming.from, id: incoming.id });
    const mine = await login.sendMessage(to, text("typo"));
    await login.sendEdit(to, mine, text("fixed"));
    await eventually(async () => {
      const got = await world.sim.users.received(bobPhone, "message");
      return got.length === 3;
    }, "the reaction, the message and its edit");
    const contents = (await world.sim.users.received(bobPhone, "message")).map(
      (e) => e.data["content"] as { kind: string }[],
    );
    assert.ok(contents.some((c) => c.some((el) => el.kind === "reactions")));
    assert.ok(contents.some((c) => c.some((el) => el.kind === "replace")));
    await eventually(
      async () => (await world.sim.users.received(bobPhone, "displayed")).length === 1,
      "the read marker",
    );
    await world.sim.users.sendTyping(bobPhone, login.jid, "composing");
    await eventually(() => world.core.of("typing").length === 1, "typing reported");
    assert.equal(world.core.of("typing")[0]?.typing, true);
  });

  it("logs in unverified with a handle", async function () {
    const process = world.connector.createLogin(alice, "handle");
    const step = await process.start();
    assert.equal(step.type === "input" && step.fields[0]?.id, "handle");
    const done = await process.submit("handle", { handle: "Alice on Matrix" });
    assert.equal(done.type, "complete");
    const login = done.type === "complete" ? done.login : assert.fail();
    assert.equal(
      await world.connector.engine.account.binding((login as InteropLogin).jid),
      undefined,
    );
    const sent = await (login as InteropLogin).sendMessage(
      world.sim.users.jidOf(bobPhone) as string as RemoteUserId,
      text("hello from an unverified user"),
    );
    await eventually(async () => {
      const got = await world.sim.users.received(bobPhone, "message");
      return got.some((e) => e.data["originId"] === sent);
    }, "bob got it");
    await (login as InteropLogin).logout();
    assert.equal((await world.connector.loadLogin(alice)).state().code, "logged-out");
  });

  it("logging out unbinds the number and deletes the keys, so the login no longer loads", async function () {
    const login = await loginByPhone();
    const before = (await world.connector.loadLogins([alice])).get(alice);
    assert.ok(before !== undefined && !(before instanceof Error));
    assert.notEqual(before.state().code, "logged-out", "a login with keys loads in a batch");
    await login.logout();
    assert.equal(login.state().code, "logged-out");
    assert.equal(await world.connector.engine.account.binding(login.jid), undefined);
    assert.deepEqual(
      await world.db.db.knex("signal_local_identities").where({ jid: login.jid }),
      [],
      "no key of the user is left",
    );
    assert.equal((await world.connector.loadLogin(alice)).state().code, "logged-out");
    const after = (await world.connector.loadLogins([alice])).get(alice);
    assert.ok(after !== undefined && !(after instanceof Error));
    assert.equal(after.state().code, "logged-out", "and not in a batch either");
  });

  /** A text to bob arrives, and bob's answer reaches the core. */
  async function talksWithBob(login: InteropLogin, what: string): Promise<void> {
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    const id = await login.sendMessage(bob, text(what));
    await eventually(async () => {
      const got = await world.sim.users.received(bobPhone, "message");
      return got.some((e) => e.data["originId"] === id);
    }, `bob got ${what}`);
    const before = world.core.of("message").length;
    await world.sim.users.send(bobPhone, login.jid, [{ kind: "body", text: `re: ${what}` }]);
    await eventually(() => world.core.of("message").length > before, `bob's answer to ${what}`);
  }

  it("logging in again after logout works: the new keys replace the old identity (§11.2 reset)", async function () {
    const first = await loginByPhone();
    await talksWithBob(first, "before logout");
    await first.logout();
    const again = await loginByPhone();
    assert.equal(again.state().code, "connected");
    assert.equal(await world.connector.engine.account.binding(again.jid), alicePhone);
    await talksWithBob(again, "after logging in again");
  });

  it("logging in again after the gatekeeper unbound the number works", async function () {
    const first = await loginByPhone();
    const provider = {
      id: "matrix-bridge-example",
      name: "Example Matrix Bridge",
      domain: first.jid.split("@")[1] ?? "",
    };
    await world.sim.gatekeeper.run(() =>
      world.sim.gatekeeper.services.identity.revoke(provider, alicePhone),
    );
    await eventually(() => first.state().code === "logged-out", "the unbound notice");
    const again = await loginByPhone();
    assert.equal(await world.connector.engine.account.binding(again.jid), alicePhone);
    await talksWithBob(again, "after the unbind");
  });

  it("a safety number exists once the contact wrote, and marking it verified is remembered", async function () {
    const login = await loginByPhone();
    const bob = world.sim.users.jidOf(bobPhone) as string as RemoteUserId;
    await world.sim.users.send(bobPhone, login.jid, [{ kind: "body", text: "hi" }]);
    await eventually(() => world.core.of("message").length === 1, "bob's message");
    const before = await login.safetyNumber(bob);
    assert.match(before.digits, /^\d{60}$/);
    assert.equal(before.verified, false);
    await login.markVerified(bob, before.digits);
    assert.equal((await login.safetyNumber(bob)).verified, true);
  });
});
