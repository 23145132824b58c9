import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { bodyOf, E2e, eventually, type WhatsAppUser } from "./harness.js";

describe("e2e: inviting a ghost to a direct chat (as mautrix does)", function () {
  this.timeout(60_000);
  let e: E2e;
  let a: WhatsAppUser;

  before(async function () {
    e = await E2e.start();
    a = await e.whatsappUser("+491701111111");
    await e.login();
  });
  after(async function () {
    await e?.stop();
  });

  const directChatWith = async (ghost: string): Promise<string> => {
    const { room_id: room } = await e.client.createRoom({
      invite: [ghost],
      is_direct: true,
      preset: sdk.Preset.TrustedPrivateChat,
    });
    return room;
  };
  const membershipOf = (room: string, user: string): string | undefined =>
    e.client.getRoom(room)?.getMember(user)?.membership;

  it("starts the chat in the user's room: the ghost joins and texts go both ways", async function () {
    const ghost = e.ghostOf(a);
    const room = await directChatWith(ghost);
    await eventually(
      () => (membershipOf(room, ghost) === "join" ? true : undefined),
      "the ghost joining",
    );
    await e.text(room, "hello from my own room");
    await e.received(a, "the text", (r) => bodyOf(r) === "hello from my own room");
    await e.from(a, { type: "text", text: "hi back" });
    await e.ghostSays(room, "A's answer in that room", (c) => c["body"] === "hi back");
  });

  it("a ghost of an unreachable number answers with a notice and leaves", async function () {
    const ghost = `@whatsapp_491709999999:${e.world.config.homeserver.domain}`;
    const room = await directChatWith(ghost);
    const notice = await e.sees(
      room,
      "the ghost's notice",
      (ev) => ev.getSender() === ghost && ev.getContent()["msgtype"] === "m.notice",
    );
    assert.match(String(notice.getContent()["body"]), /cannot be reached/);
    await eventually(
      () => (membershipOf(room, ghost) === "leave" ? true : undefined),
      "the ghost leaving",
    );
  });
});
