import { BridgeCore } from "../../src/core/bridge-core.js";
import { coreTables } from "../helpers/core-tables.js";
import type {
  CoreCallbacks,
  GroupInfo,
  GroupMember,
  MessageContent,
  MessageReference,
  NetworkConnector,
  RemoteChatId,
  RemoteEvent,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
} from "../../src/core/network.js";
import type { Config } from "../../src/config/schema.js";
import { LoopbackNetwork } from "../../src/networks/loopback/index.js";
import { BridgeError } from "../../src/util/errors.js";
import type { MatrixUserId, RoomId } from "../../src/util/ids.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeMatrix } from "./fakes/matrix.js";
import { FakeNetwork, contactId, selfIdOf } from "./fakes/network.js";
import { ALICE, MGMT, logIn, testConfig, type CoreHarness } from "./helpers.js";

/** A string as a regular expression matching it literally. */
export const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

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
  /** Groups by id as the network keeps them; tests may edit them (a change made elsewhere). */
  readonly groups: Map<RemoteGroupId, { subject: string; version: number; members: GroupMember[] }>;
  /** Makes a group as a remote user would; the bridge learns of it from a reported event. */
  newGroup(subject: string, members: GroupMember[]): RemoteGroupId;
  /** A group's info as the network would report it. */
  groupInfo(id: RemoteGroupId): GroupInfo;
  /** Resolves once every event the network reports on its own (echoes of changes) is handled. */
  settled(): Promise<void>;
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
  /** Another user's login through the bot in their management room; resolves to their own id. */
  logInAs(h: NetHarness, user: MatrixUserId, room: RoomId): Promise<RemoteUserId>;
  /** A further contact of the network, distinct for each `n` (1-9) and from `bob` and `carol`. */
  contact(n: number): TestContact;
  /**
   * A group member the bridge knows only by the network's `displayName`: interop's user of
   * another provider (no phone number); on a network where every member has an address, a
   * contact like any other.
   */
  outsider: TestContact & { displayName: string };
  /** Makes `contact` refuse to be added to groups (the network's rejection `refused`). */
  refuseGroups(network: TestNetwork, contact: TestContact): void;
  /** Makes the next additions to `group` fail as the group is full; returns the undo. */
  fillGroup(network: TestNetwork, group: RemoteGroupId): () => void;
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
  async logInAs(h, user, room) {
    await h.core.onBotInvited(user, room);
    const localpart = user.slice(1, user.indexOf(":"));
    // ALICE's number is logIn's; others get one of their own, the same in every test.
    const phone = FAKE_PHONES[localpart] ?? `+4917098765${10 + (localpart.charCodeAt(0) % 30)}`;
    for (const line of ["login", "phone", phone, "123456"]) await h.say(line, user, room);
    return selfIdOf(user);
  },
  contact(n) {
    const digits = String(n).repeat(7);
    const shown = `+49 170 ${digits}`;
    return {
      typed: `+49170${digits}`,
      id: contactId(`+49170${digits}`),
      ghost: `@whatsapp_49170${digits}:example.org`,
      shown,
      ghostName: `${shown} (WhatsApp)`,
    };
  },
  outsider: {
    typed: "carol@other.example",
    id: "carol@other.example" as RemoteUserId,
    ghost: "@whatsapp__carol=40other.example:example.org",
    shown: "carol · other.example",
    ghostName: "carol · other.example",
    displayName: "carol · other.example",
  },
  refuseGroups: (network, contact) => (network as FakeNetwork).refusedMembers.add(contact.id),
  fillGroup(network) {
    const fake = network as FakeNetwork;
    fake.groupError = new BridgeError("group-full", "The group is full.");
    return () => (fake.groupError = undefined);
  },
  supports: { retract: true, safetyNumbers: true, report: true },
};

const FAKE_PHONES: Readonly<Record<string, string>> = {
  alice: "+491709876543",
  bob: "+491709876544",
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
  async logInAs(h, user, room) {
    const name = user.slice(1, user.indexOf(":"));
    await h.core.onBotInvited(user, room);
    for (const line of ["login", "name", name]) await h.say(line, user, room);
    return `${name}@loop` as RemoteUserId;
  },
  contact: (n) => loopbackContact(`user${n}`),
  outsider: { ...loopbackContact("carol"), displayName: "carol@loop" },
  refuseGroups: (network, contact) => (network as LoopbackNetwork).refusesGroups.add(contact.typed),
  fillGroup(network, group) {
    const loopback = network as LoopbackNetwork;
    const before = loopback.maxGroupSize;
    loopback.maxGroupSize = loopback.groupInfo(group).members.length;
    return () => (loopback.maxGroupSize = before);
  },
  supports: { retract: false, safetyNumbers: false, report: false },
};

export const NETWORKS: readonly NetworkUnderTest[] = [phoneFake, loopback];

/** The core on a fresh SQLite database with a fake homeserver API and the network under test. */
export async function createCoreOn(
  nut: NetworkUnderTest,
  config: Config = testConfig(),
  log: Logger = silentLogger(),
): Promise<NetHarness> {
  const db: TestDatabase = await createTestDatabase("sqlite");
  const matrix = new FakeMatrix();
  let network: TestNetwork | undefined;
  const core = new BridgeCore({
    config,
    knex: db.db.knex,
    matrix,
    createConnector: (callbacks) => (network = nut.build(callbacks)),
    log,
  });
  await core.start();
  if (network === undefined) throw new Error("the core did not create its connector");
  return {
    core,
    config,
    tables: coreTables(db.db.knex, core.network.id),
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
