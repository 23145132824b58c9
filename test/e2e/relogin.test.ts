import assert from "node:assert/strict";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("e2e: logging out and in again", function () {
  this.timeout(90_000);
  let e: E2e;
  let a: WhatsAppUser;
  let portal: string;

  before(async function () {
    // Two logins ask for two codes within a minute.
    e = await E2e.start("alice", { simulatorLimits: { "verification-interval-seconds": 0 } });
    a = await e.whatsappUser("+491701111111");
    await e.login();
  });
  after(async function () {
    await e?.stop();
  });

  const botNoticesAfter = (eventId: string): string[] => {
    const events = e.timeline(e.mgmt);
    const at = events.findIndex((ev) => ev.getId() === eventId);
    return events
      .slice(at + 1)
      .filter((ev) => ev.getSender() === e.bot)
      .map((ev) => String(ev.getContent()["body"]));
  };

  it("logout says so in one notice that offers to clean up; logging in again works and the chat goes on", async function () {
    portal = await e.openChat(a);
    await e.text(portal, "before logout");
    await e.received(a, "the first text", (r) => bodyOf(r) === "before logout");

    const logout = await e.text(e.mgmt, "logout");
    await e.botSays(e.mgmt, /^Logged out/);
    await pause(1500); // a second, late notice (the gatekeeper's unbound) would show by now
    const notices = botNoticesAfter(logout);
    assert.equal(notices.length, 1, notices.join(" | "));
    assert.match(notices[0] ?? "", /1 chat\(s\) are kept.*`clean-up`/);

    await e.phoneLogin();
    await e.text(portal, "after logging in again");
    await e.received(
      a,
      "the text after the new login",
      (r) => bodyOf(r) === "after logging in again",
    );
    await e.from(a, { type: "text", text: "welcome back" });
    await e.ghostSays(portal, "A's answer", (c) => c["body"] === "welcome back");
  });

  it("clean-up after logout leaves the chats and takes them off the WhatsApp space", async function () {
    const space = e.client
      .getRoom(portal)
      ?.currentState.getStateEvents("m.space.parent")
      .map((ev) => ev.getStateKey())[0];
    assert.ok(space, "the portal names its space");
    await e.client.joinRoom(space);
    await eventually(
      () =>
        e.client.getRoom(space)?.currentState.getStateEvents("m.space.child", portal)
          ? true
          : undefined,
      "the space listing the portal",
    );
    await e.command("logout", /^Logged out/);
    assert.match(await e.command("clean-up"), /^Left 1 chat\(s\)/);
    await eventually(() => {
      const child = e.client.getRoom(space)?.currentState.getStateEvents("m.space.child", portal);
      return child !== undefined && child !== null && Object.keys(child.getContent()).length === 0
        ? true
        : undefined;
    }, "the space to drop the portal");
  });
});
