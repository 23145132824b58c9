import { BridgeCore } from "../../src/core/bridge-core.js";
import { coreTables } from "../helpers/core-tables.js";
import type {
  CoreCallbacks,
  GroupInfo,
  LoginState,
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
import type { DatabaseType } from "../../src/db/database.js";
import type { PortalRow } from "../../src/db/portals.js";
import { LoopbackNetwork } from "../../src/networks/loopback/index.js";
import { BridgeError } from "../../src/util/errors.js";
import { phoneNumber, type MatrixUserId, type RoomId } from "../../src/util/ids.js";
import { formatInternational } from "../../src/util/phone.js";
import { silentLogger, type Logger } from "../../src/util/log.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeMatrix } from "./fakes/matrix.js";
import { FakeNetwork, contactId, selfIdOf } from "./fakes/network.js";
import { SimulatedInterop, localJid, startInteropHost } from "./interop-network.js";
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
  /**
   * Groups by id as the network keeps them (read after `settled`); tests may edit them on a
   * network with hooks (a change made elsewhere).
   */
  readonly groups: Map<RemoteGroupId, { subject: string; version: number; members: GroupMember[] }>;
  /** Makes a group as a remote user would; the bridge learns of it from a reported event. */
  newGroup(subject: string, members: GroupMember[]): RemoteGroupId | Promise<RemoteGroupId>;
  /** A group's info as the network would report it. */
  groupInfo(id: RemoteGroupId): GroupInfo;
  /**
   * Resolves once every event the network reports on its own (echoes of changes) is handled and
   * everything the core asked of it arrived: read `sent` and `actions` after it (a real network
   * delivers them asynchronously).
   */
  settled(): Promise<void>;
  /** Once the core started it: resolves when the network can be used (connected). */
  ready?(): Promise<void>;
  /** After the core stopped it: stops what it ran on (a gatekeeper simulator). */
  dispose?(): Promise<void>;
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
  /** Which network it is, the same on every backend (`label` names the backend too). */
  id: "fake" | "loopback" | "interop";
  label: string;
  /** The database the harness's core runs on. */
  backend: DatabaseType;
  /** The network's name in texts. */
  name: string;
  /**
   * Starts what the network runs on outside the bridge (the gatekeeper simulator), once per
   * harness, and returns how to build it when the core creates its connector.
   */
  open(db: TestDatabase): Promise<(callbacks: CoreCallbacks) => TestNetwork>;
  /**
   * Whether the network has hooks to misbehave or report anything on demand (the fake, loopback);
   * false for the real interop connector, which reports only what a simulated user can do.
   */
  hooks: boolean;
  /** Makes a contact reachable (a user of the network who allows chats). */
  addUser(network: TestNetwork, contact: TestContact): void | Promise<void>;
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
  /** Makes `contact` refuse to be added to groups (the network's rejection). */
  refuseGroups(network: TestNetwork, contact: TestContact): void | Promise<void>;
  /** Makes the next additions to `group` fail as the group is full; returns the undo. */
  fillGroup(network: TestNetwork, group: RemoteGroupId): () => void;
  supports: { retract: boolean; safetyNumbers: boolean; report: boolean };
  /**
   * Makes the connector's loads of stored logins fail as if the stored keys were unreadable
   * ("stored keys unreadable"), or load again. On the real connector the fault is put into its
   * load methods: its key store has none on demand.
   */
  failLoads(network: TestNetwork, on: boolean): void;
  /**
   * The network ends `user`'s login by itself (interop: WhatsApp revokes the number) and reports
   * it; absent where a network never does (loopback).
   */
  endLogin?(network: TestNetwork, user: MatrixUserId, state: LoginState): Promise<void>;
}

/** A fault in the loads of stored logins, on a connector that has no hook for it. */
function failLoadsOf(network: TestNetwork, on: boolean): void {
  const target = network as unknown as Record<string, unknown>;
  for (const method of ["loadLogin", "loadLogins"]) {
    if (!on) delete target[method];
    else if (method in target) {
      target[method] = () => Promise.reject(new Error("stored keys unreadable"));
    }
  }
}

export interface NetHarness extends Omit<CoreHarness, "network"> {
  network: TestNetwork;
  nut: NetworkUnderTest;
}

/** The phone-numbered fake (test/core/fakes/network.ts) that imitates WhatsApp. */
const phoneFake: NetworkBase = {
  id: "fake",
  label: "a phone-numbered network (FakeNetwork)",
  name: "WhatsApp",
  open: async () => (callbacks) => {
    const network = new FakeNetwork();
    network.callbacks = callbacks;
    return network;
  },
  hooks: true,
  addUser: (network, contact) => void (network as FakeNetwork).reachable.add(contact.typed),
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
  refuseGroups: (network, contact) => void (network as FakeNetwork).refusedMembers.add(contact.id),
  fillGroup(network) {
    const fake = network as FakeNetwork;
    fake.groupError = new BridgeError("group-full", "The group is full.");
    return () => (fake.groupError = undefined);
  },
  supports: { retract: true, safetyNumbers: true, report: true },
  failLoads: (network, on) => void ((network as FakeNetwork).failLoad = on),
  async endLogin(network, user, state) {
    (network as FakeNetwork).loginStates.set(user, state);
    await network.report(user, { kind: "state", state });
  },
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
const loopback: NetworkBase = {
  id: "loopback",
  label: "the loopback network",
  name: "Loopback",
  open: async () => (callbacks) => new LoopbackNetwork(callbacks),
  hooks: true,
  addUser: (network, contact) => void (network as LoopbackNetwork).users.add(contact.typed),
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
  refuseGroups: (network, contact) =>
    void (network as LoopbackNetwork).refusesGroups.add(contact.typed),
  fillGroup(network, group) {
    const loopback = network as LoopbackNetwork;
    const before = loopback.maxGroupSize;
    loopback.maxGroupSize = loopback.groupInfo(group).members.length;
    return () => (loopback.maxGroupSize = before);
  },
  supports: { retract: false, safetyNumbers: false, report: false },
  failLoads: failLoadsOf,
};

const phoneContact = (phone: string): TestContact => {
  const digits = phone.slice(1);
  const shown = formatInternational(phoneNumber(phone));
  return {
    typed: phone,
    id: `${digits}@wa.example` as RemoteUserId,
    ghost: `@whatsapp_${digits}:example.org`,
    shown,
    ghostName: `${shown} (WhatsApp)`,
  };
};

/** Logs `user` in through the bot with the gatekeeper's real phone verification. */
async function logInByPhone(h: NetHarness, user: MatrixUserId, room: RoomId, phone: string) {
  const network = h.network as SimulatedInterop;
  await h.core.onBotInvited(user, room);
  for (const line of ["login", "phone", phone]) await h.say(line, user, room);
  const sent = await network.sim.gatekeeper.services.identity.latestCode(phoneNumber(phone));
  if (sent === undefined) throw new Error(`the gatekeeper sent no code to ${phone}`);
  await h.say(sent.code, user, room);
}

/**
 * The real interop connector (src/interop/connector/) over the embedded gatekeeper simulator,
 * one per harness: what Matrix users send is read back from what simulated WhatsApp users
 * decrypted, and an event a test reports is a simulated user doing it (test/core/interop-network.ts).
 */
const interop: NetworkBase = {
  id: "interop",
  label: "the interop connector over the gatekeeper simulator",
  name: "WhatsApp",
  async open(db) {
    const sim = await startInteropHost();
    return (callbacks) => new SimulatedInterop(sim, db, callbacks);
  },
  hooks: false,
  addUser: (network, contact) => (network as SimulatedInterop).addUser(phoneNumber(contact.typed)),
  bob: phoneContact("+491701234567"),
  carol: phoneContact("+491705550001"),
  nobody: "+491705550000",
  loggedInAs: "+49 170 9876543 (verified)",
  flowChoice: /reply `phone`/,
  logIn: (h) => logInByPhone(h, ALICE, MGMT, "+491709876543"),
  async logInAs(h, user, room) {
    const localpart = user.slice(1, user.indexOf(":"));
    const phone = FAKE_PHONES[localpart] ?? `+4917098765${10 + (localpart.charCodeAt(0) % 30)}`;
    await logInByPhone(h, user, room, phone);
    return localJid(user) as string as RemoteUserId;
  },
  contact: (n) => phoneContact(`+49170${String(n).repeat(7)}`),
  outsider: { ...phoneContact("+491705550002"), displayName: "+49 170 5550002" },
  refuseGroups: (network, contact) => (network as SimulatedInterop).refuseGroups(contact.id),
  fillGroup: (network, group) => (network as SimulatedInterop).fillGroup(group),
  supports: { retract: true, safetyNumbers: true, report: true },
  failLoads: failLoadsOf,
  endLogin: (network, user, state) => network.report(user, { kind: "state", state }),
};

/** A network under test before it is put on a backend. */
type NetworkBase = Omit<NetworkUnderTest, "backend">;

/** `network` on each backend, its label naming the backend. */
const onBackends = (network: NetworkBase): NetworkUnderTest[] =>
  BACKENDS.map((backend) => ({ ...network, backend, label: `${network.label} [${backend}]` }));

/** The networks every parametrised core test runs on, each on every backend. */
export const NETWORKS: readonly NetworkUnderTest[] = [phoneFake, loopback].flatMap(onBackends);

/** NETWORKS and the real interop connector: for the test files opted in to it. */
export const WITH_INTEROP: readonly NetworkUnderTest[] = [...NETWORKS, ...onBackends(interop)];

/**
 * `it` on a network with test hooks, `it.skip` on the real connector: for a test that needs a
 * hook or an event no simulated user can produce; `why` says which, in one line.
 */
export function withHooks(nut: NetworkUnderTest, why: string): Mocha.TestFunction {
  void why;
  return nut.hooks ? it : (it.skip as unknown as Mocha.TestFunction);
}

/**
 * Joins the portal with `contact` if it is a message request. A test's `isRequest: false` means a
 * contact the user knows; on the real network every first message is a request (§10.3), which the
 * user accepts by joining before reading or seeing typing (P17).
 */
export async function acceptIfRequest(h: NetHarness, contact: RemoteUserId): Promise<PortalRow> {
  const row = await h.tables.portalRows.get(ALICE, contact);
  if (row === undefined) throw new Error(`no portal with ${contact}`);
  if (row.requestState !== "incoming-pending") return row;
  await h.core.router.portals.onUserMembership(row, "join");
  const accepted = await h.tables.portalRows.get(ALICE, contact);
  if (accepted === undefined) throw new Error(`the portal with ${contact} went away`);
  return accepted;
}

/**
 * The core on a fresh database of the network's backend with a fake homeserver API and the
 * network under test.
 */
export async function createCoreOn(
  nut: NetworkUnderTest,
  config: Config = testConfig(),
  log: Logger = silentLogger(),
): Promise<NetHarness> {
  const db: TestDatabase = await createTestDatabase(nut.backend, { reuse: true });
  const matrix = new FakeMatrix();
  const build = await nut.open(db);
  let network: TestNetwork | undefined;
  const core = new BridgeCore({
    config,
    knex: db.db.knex,
    matrix,
    createConnector: (callbacks) => (network = build(callbacks)),
    log,
  });
  await core.start();
  if (network === undefined) throw new Error("the core did not create its connector");
  await network.ready?.();
  const started = network;
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
      await started.dispose?.();
      await db.dispose();
    },
  };
}
