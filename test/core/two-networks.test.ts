import assert from "node:assert/strict";
import { BridgeCore } from "../../src/core/bridge-core.js";
import type { CoreCallbacks, NetworkDescription } from "../../src/core/network.js";
import { LOOPBACK_DESCRIPTION, LoopbackNetwork } from "../../src/networks/loopback/index.js";
import { matrixUserId, roomId, type MatrixUserId, type RoomId } from "../../src/util/ids.js";
import { silentLogger } from "../../src/util/log.js";
import { coreTables } from "../helpers/core-tables.js";
import { describeOnBackends } from "../helpers/db.js";
import { FakeMatrix } from "./fakes/matrix.js";
import { testConfig } from "./helpers.js";

/** A second network with the loopback's addresses (so the same remote ids) under another id. */
const SECOND: NetworkDescription = {
  ...LOOPBACK_DESCRIPTION,
  id: "loopback-two",
  displayName: "Loopback Two",
  commandPrefix: "!l2",
  ghostLocalpartTemplate: "looptwo_{id}",
  ghostDisplayNameTemplate: "{id} (Loopback Two)",
};

class SecondLoopback extends LoopbackNetwork {
  constructor(callbacks: CoreCallbacks) {
    super(callbacks);
  }

  override describe(): NetworkDescription {
    return SECOND;
  }
}

interface Side {
  core: BridgeCore;
  matrix: FakeMatrix;
  network: LoopbackNetwork;
  user: MatrixUserId;
  room: RoomId;
}

describeOnBackends("two networks on one database, with the same remote ids", (get) => {
  const sides: Side[] = [];

  before(async function () {
    const build = [
      (callbacks: CoreCallbacks) => new LoopbackNetwork(callbacks),
      (callbacks: CoreCallbacks) => new SecondLoopback(callbacks),
    ];
    for (const [i, name] of ["alice", "dave"].entries()) {
      const matrix = new FakeMatrix();
      // One homeserver: the second fake's room ids must not repeat the first's.
      (matrix as unknown as { next: number }).next = 1 + 1000 * i;
      let network: LoopbackNetwork | undefined;
      const core = new BridgeCore({
        config: testConfig(),
        knex: get().db.knex,
        matrix,
        createConnector: (callbacks) => (network = build[i]!(callbacks)),
        log: silentLogger(),
      });
      await core.start();
      if (network === undefined) throw new Error("the core did not create its connector");
      const user = matrixUserId(`@${name}:example.org`);
      const room = roomId(`!mgmt-${name}:example.org`);
      await core.onBotInvited(user, room);
      for (const line of ["login", "name", name]) {
        await core.handleManagementMessage(user, room, line);
      }
      sides.push({ core, matrix, network, user, room });
    }
  });

  after(async function () {
    for (const side of sides) await side.core.stop();
  });

  it("each network's contact gets its own ghost, portal and contact row", async function () {
    const [a, b] = sides as [Side, Side];
    await a.network.remote("bob@loop").send(a.user, "hi from the first network");
    await b.network.remote("bob@loop").send(b.user, "hi from the second network");
    const posted = (side: Side) =>
      side.matrix.events.filter((e) => e.kind === "content").map((e) => [e.sender, e.text]);
    assert.deepEqual(posted(a), [["@loop_bob:example.org", "hi from the first network"]]);
    assert.deepEqual(posted(b), [["@looptwo_bob:example.org", "hi from the second network"]]);
    assert.equal(
      b.matrix.ghosts.get(matrixUserId("@looptwo_bob:example.org")),
      "bob@loop (Loopback Two)",
    );
    const tablesA = coreTables(get().db.knex, a.core.network.id);
    const tablesB = coreTables(get().db.knex, b.core.network.id);
    const portalA = await tablesA.portalRows.get(a.user, "bob@loop" as never);
    const portalB = await tablesB.portalRows.get(b.user, "bob@loop" as never);
    assert.ok(portalA?.roomId !== undefined && portalB?.roomId !== undefined);
    assert.notEqual(portalA.id, portalB.id);
    assert.equal(await tablesA.portalRows.get(b.user, "bob@loop" as never), undefined);
    // Each core restores and counts only its own network's logins.
    assert.deepEqual(await tablesA.users.loggedInIds(), [a.user]);
    assert.deepEqual(await tablesB.users.loggedInIds(), [b.user]);
  });
});
