import { BridgeCore } from "../../src/core/bridge-core.js";
import { coreTables } from "../helpers/core-tables.js";
import type {
  CoreCallbacks,
  MessageContent,
  MessageReference,
  NetworkConnector,
  RemoteChatId,
  RemoteEvent,
  RemoteMessageId,
  RemoteUserId,
} from "../../src/core/network.js";
import type { Config } from "../../src/config/schema.js";
import { LoopbackNetwork } from "../../src/networks/loopback/index.js";
import type { MatrixUserId, RoomId } from "../../src/util/ids.js";
import { silentLogger } from "../../src/util/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeMatrix } from "./fakes/matrix.js";
import { FakeNetwork, contactId } from "./fakes/network.js";
import { ALICE, MGMT, logIn, testConfig, type CoreHarness } from "./helpers.js";

/** What the parametrised core tests see of either network: its contract plus a test journal. */
export interface TestNetwork extends NetworkConnector {
  /** Messages Matrix users sent into the network. */
  readonly sent: readonly {
    from: MatrixUserId;
    to: RemoteChatId;
    content: MessageContent;
    replyTo?: MessageReference;
    id: RemoteMessageId;
  }[];
  /** Everything else the core asked, one line each (`read <contact> <id>`). */
  readonly actions: string[];
  /** Hands an event to the core as the network would. */
  report(user: MatrixUserId, event: RemoteEvent): Promise<void>;
  editWindowMs: number;
}

/** A contact on a network under test, in every form the tests compare with. */
export interface TestContact {
  /** As a user types it in a command. */
  typed: string;
  id: RemoteUserId;
  /** The ghost's Matrix id. */
  ghost: string;
  /** As notices show it. */
  shown: string;
  /** The ghost's display name. */
  ghostName: string;
}

export interface NetworkUnderTest {
  label: string;
  /** The network's name in texts. */
  name: string;
  build(callbacks: CoreCallbacks): TestNetwork;
  /** Makes a contact reachable (a user of the network who allows chats). */
  addUser(network: TestNetwork, contact: TestContact): void;
  bob: TestContact;
  carol: TestContact;
  /** An address of the network's kind that nobody has. */
  nobody: string;
  /** What the status line says after "Logged in as" once ALICE logged in with `logIn`. */
  loggedInAs: string;
  /** Matches the login warning's choice of flows. */
  flowChoice: RegExp;
  /** ALICE's login through the bot, from the invite to a complete login. */
  logIn(h: NetHarness): Promise<void>;
  supports: { retract: boolean; safetyNumbers: boolean; report: boolean };
}

export interface NetHarness extends Omit<CoreHarness, "network"> {
  network: TestNetwork;
  nut: NetworkUnderTest;
}

/** The phone-numbered fake (test/core/fakes/network.ts) that imitates WhatsApp. */
const phoneFake: NetworkUnderTest = {
  label: "a phone-numbered network (FakeNetwork)",
  name: "WhatsApp",
  build(callbacks) {
    const network = new FakeNetwork();
    network.callbacks = callbacks;
    return network;
  },
  addUser: (network, contact) => (network as FakeNetwork).reachable.add(contact.typed),
  bob: {
    typed: "+491701234567",
    id: contactId("+491701234567"),
    ghost: "@whatsapp_491701234567:example.org",
    shown: "+49 170 1234567",
    ghostName: "+49 170 1234567 (WhatsApp)",
  },
  carol: {
    typed: "+491705550001",
    id: contactId("+491705550001"),
    ghost: "@whatsapp_491705550001:example.org",
    shown: "+49 170 5550001",
    ghostName: "+49 170 5550001 (WhatsApp)",
  },
  nobody: "+491705550000",
  loggedInAs: "+49 170 9876543 (verified)",
  flowChoice: /reply `phone`/,
  logIn: (h) => logIn(h as unknown as CoreHarness),
  supports: { retract: true, safetyNumbers: true, report: true },
};

const loopbackContact = (name: string): TestContact => ({
  typed: `${name}@loop`,
  id: `${name}@loop` as RemoteUserId,
  ghost: `@loop_${name}:example.org`,
  shown: `${name}@loop`,
  ghostName: `${name}@loop (Loopback)`,
});

/** The in-memory loopback network (src/networks/loopback/): handles, no phone numbers. */
const loopback: NetworkUnderTest = {
  label: "the loopback network",
  name: "Loopback",
  build: (callbacks) => new LoopbackNetwork(callbacks),
  addUser: (network, contact) => (network as LoopbackNetwork).users.add(contact.typed),
  bob: loopbackContact("bob"),
  carol: loopbackContact("carol"),
  nobody: "nobody@loop",
  // Loopback names are its ordinary user names: nothing to call unverified.
  loggedInAs: "alice",
  flowChoice: /reply `name` \(a loopback name\)/,
  async logIn(h) {
    await h.core.onBotInvited(ALICE, MGMT);
    await h.say("login");
    await h.say("name");
    await h.say("alice");
  },
  supports: { retract: false, safetyNumbers: false, report: false },
};

export const NETWORKS: readonly NetworkUnderTest[] = [phoneFake, loopback];

/** The core on a fresh SQLite database with a fake homeserver API and the network under test. */
export async function createCoreOn(
  nut: NetworkUnderTest,
  config: Config = testConfig(),
): Promise<NetHarness> {
  const db: TestDatabase = await createTestDatabase("sqlite");
  const matrix = new FakeMatrix();
  let network: TestNetwork | undefined;
  const core = new BridgeCore({
    config,
    knex: db.db.knex,
    matrix,
    createConnector: (callbacks) => (network = nut.build(callbacks)),
    log: silentLogger(),
  });
  await core.start();
  if (network === undefined) throw new Error("the core did not create its connector");
  return {
    core,
    config,
    tables: coreTables(db.db.knex),
    matrix,
    network,
    db,
    nut,
    async say(text: string, user: MatrixUserId = ALICE, room: RoomId = MGMT) {
      const before = matrix.notices(room).length;
      await core.handleManagementMessage(user, room, text);
      return matrix.notices(room).slice(before);
    },
    async dispose() {
      await core.stop();
      await db.dispose();
    },
  };
}
