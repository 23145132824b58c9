import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { createTestHomeserver, type TestHomeserver } from "./index.js";
import { createSdkClient, stopSdkClient } from "./sdkClient.js";
import { eventually, silenceMatrixSdk } from "./testHelpers.js";

silenceMatrixSdk();

/** Resolves with the first timeline event of `client` in `roomId` that satisfies `predicate`. */
function nextTimelineEvent(
  client: sdk.MatrixClient,
  roomId: string,
  predicate: (event: sdk.MatrixEvent) => boolean,
): Promise<sdk.MatrixEvent> {
  return new Promise((resolve) => {
    const listener = (event: sdk.MatrixEvent, room: sdk.Room | undefined): void => {
      if (room?.roomId === roomId && !event.status && predicate(event)) {
        client.off(sdk.RoomEvent.Timeline, listener);
        resolve(event);
      }
    };
    client.on(sdk.RoomEvent.Timeline, listener);
  });
}

async function startSyncing(client: sdk.MatrixClient): Promise<void> {
  const prepared = new Promise<void>((resolve) => {
    const onSync = (state: sdk.SyncState): void => {
      if (state === sdk.SyncState.Prepared) {
        client.off(sdk.ClientEvent.Sync, onSync);
        resolve();
      }
    };
    client.on(sdk.ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
}

describe("test homeserver with a real matrix-js-sdk client", function () {
  let hs: TestHomeserver;
  let alice: sdk.MatrixClient;
  let bob: sdk.MatrixClient;

  beforeEach(async function () {
    hs = createTestHomeserver({ serverName: "hs.test", profile: "spec" });
    await hs.start();
    hs.registerUser("alice", "alice-pw");
    hs.registerUser("bob", "bob-pw");
    const anonymous = sdk.createClient({ baseUrl: hs.url });
    const aliceLogin = await anonymous.loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: "alice-pw",
    });
    const bobLogin = await anonymous.loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "@bob:hs.test" },
      password: "bob-pw",
    });
    alice = createSdkClient({ baseUrl: hs.url, ...credentials(aliceLogin) });
    bob = createSdkClient({ baseUrl: hs.url, ...credentials(bobLogin) });
    await Promise.all([startSyncing(alice), startSyncing(bob)]);
  });

  afterEach(async function () {
    stopSdkClient(alice);
    stopSdkClient(bob);
    await hs.stop();
  });

  it("a wrong password is refused with M_FORBIDDEN", async function () {
    const anonymous = sdk.createClient({ baseUrl: hs.url });
    await assert.rejects(
      anonymous.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "alice" },
        password: "x",
      }),
      (err: sdk.MatrixError) => err.errcode === "M_FORBIDDEN" && err.httpStatus === 403,
    );
  });

  it("messages, a reaction, a redaction, a read receipt and typing flow between two synced clients", async function () {
    const { room_id: roomId } = await alice.createRoom({
      preset: sdk.Preset.PublicChat,
      name: "Lobby",
    });
    const bobSeesJoin = nextTimelineEvent(
      alice,
      roomId,
      (e) => e.getType() === "m.room.member" && e.getStateKey() === bob.getUserId(),
    );
    await bob.joinRoom(roomId);
    await bobSeesJoin;

    const bobGetsHello = nextTimelineEvent(
      bob,
      roomId,
      (e) => e.getContent()["body"] === "hello bob",
    );
    const { event_id: helloId } = await alice.sendTextMessage(roomId, "hello bob");
    const hello = await bobGetsHello;
    assert.equal(hello.getId(), helloId);
    assert.equal(hello.getSender(), alice.getUserId());

    const aliceGetsReply = nextTimelineEvent(
      alice,
      roomId,
      (e) => e.getContent()["body"] === "hi alice",
    );
    await bob.sendTextMessage(roomId, "hi alice");
    assert.equal((await aliceGetsReply).getSender(), bob.getUserId());

    const aliceGetsReaction = nextTimelineEvent(alice, roomId, (e) => e.getType() === "m.reaction");
    await bob.sendEvent(roomId, sdk.EventType.Reaction, {
      "m.relates_to": { rel_type: sdk.RelationType.Annotation, event_id: helloId, key: "👍" },
    });
    const reaction = await aliceGetsReaction;
    assert.deepEqual(reaction.getRelation(), {
      rel_type: "m.annotation",
      event_id: helloId,
      key: "👍",
    });

    const bobGetsRedaction = nextTimelineEvent(
      bob,
      roomId,
      (e) => e.getType() === "m.room.redaction",
    );
    await alice.redactEvent(roomId, helloId, undefined, { reason: "typo" });
    const redaction = await bobGetsRedaction;
    assert.equal(redaction.event.redacts ?? redaction.getContent()["redacts"], helloId);
    const redacted = bob.getRoom(roomId)?.findEventById(helloId);
    assert.ok(redacted?.isRedacted(), "bob's copy of the message is redacted");
    assert.deepEqual(redacted?.getContent(), {});

    const receiptArrives = new Promise<void>((resolve) => {
      alice.on(sdk.RoomEvent.Receipt, (_event, room) => {
        if (room.getEventReadUpTo(bob.getUserId() ?? "", true) === reaction.getId()) resolve();
      });
    });
    const bobsCopy = bob.getRoom(roomId)?.findEventById(reaction.getId() ?? "");
    assert.ok(bobsCopy);
    await bob.sendReadReceipt(bobsCopy);
    await receiptArrives;

    const typingArrives = new Promise<void>((resolve) => {
      alice.on(sdk.RoomMemberEvent.Typing, (_event, member) => {
        if (member.userId === bob.getUserId() && member.typing) resolve();
      });
    });
    await bob.sendTyping(roomId, true, 10_000);
    await typingArrives;
  });

  it("the sender's own echo replaces its local echo instead of appearing twice", async function () {
    const { room_id: roomId } = await alice.createRoom({});
    const { event_id: eventId } = await alice.sendTextMessage(roomId, "mine");
    await eventually(() => {
      const e = alice.getRoom(roomId)?.findEventById(eventId);
      return e !== undefined && e.status === null ? e : undefined;
    }, "the remote echo");
    const timeline = alice.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
    const mine = timeline.filter((e) => e.getContent()["body"] === "mine");
    assert.equal(mine.length, 1);
    assert.equal(mine[0]?.getId(), eventId);
  });

  it("an invite reaches the invitee's sync and accepting it joins the room", async function () {
    const { room_id: roomId } = await alice.createRoom({
      preset: sdk.Preset.PrivateChat,
      invite: [bob.getUserId() ?? ""],
    });
    const invited = await eventually(
      () =>
        bob.getRoom(roomId)?.getMyMembership() === sdk.KnownMembership.Invite ? true : undefined,
      "bob's invite",
    );
    assert.equal(invited, true);
    await bob.joinRoom(roomId);
    await eventually(
      () =>
        alice.getRoom(roomId)?.getMember(bob.getUserId() ?? "")?.membership === "join"
          ? true
          : undefined,
      "bob joined as seen by alice",
    );
  });
});

function credentials(login: sdk.LoginResponse): {
  userId: string;
  accessToken: string;
  deviceId: string;
} {
  return { userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id };
}
