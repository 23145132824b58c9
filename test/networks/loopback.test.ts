import assert from "node:assert/strict";
import type { RemoteEvent, RemoteMessageId } from "../../src/core/network.js";
import {
  isBlockCapable,
  isEditCapable,
  isGroupCapable,
  isReactionCapable,
  isReportCapable,
  isRetractCapable,
  isSafetyNumberCapable,
} from "../../src/core/network.js";
import { LoopbackNetwork, loopbackIdentifier } from "../../src/networks/loopback/index.js";
import { BridgeError } from "../../src/util/errors.js";
import { matrixUserId, type ContactAddress } from "../../src/util/ids.js";

const ALICE = matrixUserId("@alice:example.org");
const text = (body: string) => ({ type: "text" as const, text: { text: body, spans: [] } });

describe("the loopback network", function () {
  let reported: { user: string; event: RemoteEvent }[];
  let network: LoopbackNetwork;
  beforeEach(function () {
    reported = [];
    network = new LoopbackNetwork({
      report: async (user, event) => {
        reported.push({ user, event });
      },
    });
  });

  it("addresses are names at loop, kept as typed, and survive a ghost localpart both ways", function () {
    assert.equal(loopbackIdentifier.parse("alice@loop"), "alice@loop");
    for (const wrong of ["+491701234567", "Alice@loop", "alice@wa.example", "@loop", "alice"]) {
      assert.equal(loopbackIdentifier.parse(wrong), undefined, wrong);
    }
    const address = "bob.b-2@loop" as ContactAddress;
    const localpart = loopbackIdentifier.toLocalpart(address);
    assert.match(localpart, new RegExp(`^${loopbackIdentifier.localpartPattern}$`));
    assert.equal(loopbackIdentifier.fromLocalpart(localpart), address);
    assert.equal(loopbackIdentifier.fromLocalpart("Bob"), undefined);
  });

  it("offers edits and reactions but no retractions, reports, safety numbers or groups", async function () {
    const login = await network.loadLogin(ALICE);
    assert.ok(isEditCapable(login) && isReactionCapable(login));
    assert.ok(!isRetractCapable(login));
    assert.ok(!isReportCapable(login));
    assert.ok(!isSafetyNumberCapable(login));
    assert.ok(!isGroupCapable(login));
  });

  it("a remote user's first message is a request, later ones are not; a login's own message opens the conversation", async function () {
    const bob = network.remote("bob@loop");
    await bob.send(ALICE, "hi");
    await bob.send(ALICE, "again");
    const carol = network.remote("carol@loop");
    const login = await network.loadLogin(ALICE);
    await login.sendMessage(carol.id, text("hello carol"));
    await carol.send(ALICE, "hello alice");
    assert.deepEqual(
      reported.map((r) => r.event.kind === "message" && [r.event.from, r.event.isRequest]),
      [
        ["bob@loop", true],
        ["bob@loop", false],
        ["carol@loop", false],
      ],
    );
  });

  it("a blocked remote user's messages never reach the core, until unblocked", async function () {
    const bob = network.remote("bob@loop");
    const login = await network.loadLogin(ALICE);
    assert.ok(isBlockCapable(login));
    await login.block(bob.id);
    await bob.send(ALICE, "let me in");
    assert.equal(reported.length, 0);
    await login.unblock(bob.id);
    await bob.send(ALICE, "thanks");
    assert.equal(reported.length, 1);
  });

  it("sending is idempotent per key, and refused for an address nobody has", async function () {
    const bob = network.remote("bob@loop");
    const login = await network.loadLogin(ALICE);
    const first = await login.sendMessage(bob.id, text("once"), undefined, "$event");
    const again = await login.sendMessage(bob.id, text("once"), undefined, "$event");
    assert.equal(again, first);
    assert.equal(network.sent.length, 1);
    await assert.rejects(
      login.sendMessage("nobody@loop" as never, text("hello?")),
      (err: unknown) => err instanceof BridgeError && err.code === "not-reachable",
    );
    assert.deepEqual(await login.resolveAddress("nobody@loop" as ContactAddress), {
      reachable: false,
    });
    assert.deepEqual(await login.resolveAddress("bob@loop" as ContactAddress), {
      reachable: true,
      contact: "bob@loop",
    });
  });

  it("remote users edit, react, read and type through the core's callbacks", async function () {
    const bob = network.remote("bob@loop");
    const id = await bob.send(ALICE, "hi");
    const target = { author: bob.id, id: id as RemoteMessageId };
    await bob.edit(ALICE, id, "hi!");
    await bob.react(ALICE, target, ["👍"]);
    await bob.read(ALICE, target);
    await bob.typing(ALICE, true);
    assert.deepEqual(
      reported.map((r) => r.event.kind),
      ["message", "edit", "reactions", "read", "typing"],
    );
  });
});
