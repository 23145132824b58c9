import type {
  CoreCallbacks,
  GroupInfo,
  GroupMember,
  MessageContent,
  MessageReference,
  RemoteEvent,
  RemoteGroupId,
  RemoteMessageId,
  RemoteUserId,
} from "../../src/core/network.js";
import type { ContentElement, GroupRequest, XmlElement } from "../../src/interop/codec/index.js";
import {
  localpartFromMatrixUserId,
  matrixUserIdFromLocalpart,
} from "../../src/interop/codec/jid.js";
import { InteropConnector } from "../../src/interop/connector/connector.js";
import { groupMember } from "../../src/interop/connector/groups.js";
import type { InteropLogin } from "../../src/interop/connector/login.js";
import { toNeutral } from "../../src/interop/convert/index.js";
import { BridgeError } from "../../src/util/errors.js";
import {
  messageId,
  type BareJid,
  type MatrixUserId,
  type PhoneNumber,
} from "../../src/util/ids.js";
import type { Simulator } from "../../simulator/main.js";
import type { LogEntry } from "../../simulator/users/log.js";
import { BRIDGE_DOMAIN } from "../interop/provider/fake-gatekeeper.js";
import { connectorOptions, eventually, startGatekeeper } from "../interop/connector/harness.js";
import type { TestDatabase } from "../helpers/db.js";
import type { TestNetwork } from "./networks.js";

/** How long `settled` waits for the connector and the simulator to go quiet. */
const SETTLE_TIMEOUT_MS = 8000;
/** Rounds in a row with nothing queued anywhere before `settled` believes it (TCP in between). */
const QUIET_ROUNDS = 3;

/** The core's group events: withheld for a made group until a test delivered its snapshot. */
const GROUP_EVENTS: ReadonlySet<string> = new Set(["group-info", "group-change", "group-subject"]);

/** A reported member change as the member's request to the gatekeeper (§17.1). */
const CHANGE_OPS = {
  added: "add",
  removed: "remove",
  promoted: "promote",
  demoted: "demote",
} as const;

/** An event a test reports that the real network cannot produce: the test must be excluded. */
export class InexpressibleEvent extends Error {
  constructor(kind: string, why: string) {
    super(`the interop network cannot report "${kind}": ${why}`);
    this.name = "InexpressibleEvent";
  }
}

/**
 * The real interop connector over the embedded gatekeeper simulator, for the core's tests. It is
 * the connector itself (a subclass adding only the journal): the core drives it as in production.
 * The journal is read back from the simulator: `sent` and `actions` from what the simulated
 * WhatsApp users received and decrypted, `report` is a simulated user doing what the event says,
 * and `settled` waits until every queue between them and the core is empty.
 *
 * Groups (§17) are the gatekeeper's: `newGroup` has one of the simulated admins create it, and
 * `groups` mirrors the gatekeeper's state after each `settled`. A test delivers a group's snapshot
 * itself (`group-info`, when and with the adder it says): until it did for a user, the
 * connector's own reports of that group to the user are withheld. Changes a test reports are made
 * by the simulated member it names, in the gatekeeper's next version only.
 */
export class SimulatedInterop extends InteropConnector implements TestNetwork {
  readonly sent: TestNetwork["sent"][number][] = [];
  readonly actions: string[] = [];
  /** The connector's edit window (§13.6), fixed; tests that change it need a fake. */
  editWindowMs = 900_000;
  readonly groups = new Map<
    RemoteGroupId,
    { subject: string; version: number; members: GroupMember[] }
  >();
  /** Simulated users by phone: created on `addUser` or on the first event a test reports from them. */
  private readonly users = new Map<PhoneNumber, Promise<unknown>>();
  /** Bridge users whose unbinding the gatekeeper confirmed: what a logout is to WhatsApp (§9.1). */
  private readonly unbound: BareJid[] = [];
  /** `group from id` of the group messages simulated users sent: a message goes out once. */
  private readonly groupSent = new Set<string>();
  /** The core's callbacks, journal included: a group snapshot a test delivers goes through them. */
  private readonly deliver: (user: MatrixUserId, event: RemoteEvent) => Promise<void>;

  constructor(
    readonly sim: Simulator,
    db: TestDatabase,
    callbacks: CoreCallbacks,
    /** Every event the core handled, in order: typing is queued nowhere `settled` could see. */
    private readonly handled: RemoteEvent[] = [],
    /** Groups made by `newGroup`, and the `user group` pairs whose snapshot a test delivered. */
    private readonly made = { groups: new Set<string>(), delivered: new Set<string>(), making: 0 },
  ) {
    const deliver = async (user: MatrixUserId, event: RemoteEvent) => {
      await callbacks.report(user, event);
      handled.push(event);
    };
    super(
      connectorOptions(sim, db, {
        async report(user, event) {
          // A made group's events wait for the test's snapshot (the class comment).
          const group = GROUP_EVENTS.has(event.kind) ? (event as { group: string }).group : "";
          // A group being made may announce itself before `newGroup` knows its id.
          if (group !== "" && made.making > 0) made.groups.add(group);
          if (made.groups.has(group) && !made.delivered.has(`${user} ${group}`)) return;
          await deliver(user, event);
        },
      }),
    );
    this.deliver = deliver;
    sim.setOutgoingFilter((stanza, send) => {
      const unbound = findChild(stanza, "unbound");
      if (unbound?.attrs["reason"] === "unbind") this.unbound.push(stanza.attrs["to"] as BareJid);
      send(stanza);
    });
  }

  /** Connected to the simulator: the core's start only starts the engine. */
  async ready(): Promise<void> {
    if (!(await this.whenReady(8000))) throw new Error("the connector never became ready");
  }

  /** After the core stopped the connector: the simulator goes too. */
  async dispose(): Promise<void> {
    await this.sim.stop();
  }

  /** Makes `contact` unreachable for the bridge (opted out of third-party chats): not addable. */
  async refuseGroups(contact: RemoteUserId): Promise<void> {
    const phone = this.phoneOf(contact);
    await this.addUser(phone);
    await this.sim.users.setOptIn(phone, false);
  }

  /** The gatekeeper's group size limit (§17.1) set to `group`'s size now; returns the undo. */
  fillGroup(group: RemoteGroupId): () => void {
    const limits = this.sim.gatekeeper.ctx.limits as { "max-group-size": number };
    const before = limits["max-group-size"];
    limits["max-group-size"] = this.groupInfo(group).members.length;
    return () => (limits["max-group-size"] = before);
  }

  /** Makes a WhatsApp user with one device who allows third-party chats. */
  async addUser(phone: PhoneNumber): Promise<void> {
    // One creation, which concurrent reports from the user all wait for, in their order.
    let created = this.users.get(phone);
    if (created === undefined) {
      created = this.sim.users.create({ phone, devices: 1 });
      this.users.set(phone, created);
    }
    await created;
  }

  /** The simulated user `contact` does what `event` says, and the core has handled the result. */
  async report(user: MatrixUserId, event: RemoteEvent): Promise<void> {
    const local = localJid(user);
    const perform = async (
      contact: RemoteUserId,
      act: (phone: PhoneNumber) => Promise<unknown>,
    ) => {
      const phone = this.phoneOf(contact);
      await this.addUser(phone);
      return act(phone);
    };
    const ref = (r: MessageReference) => ({
      id: messageId(r.id),
      author:
        r.author === undefined ||
        (this.addressOf(r.author) === undefined && matrixUserOf(jid(r.author)) === undefined)
          ? local
          : jid(r.author),
    });
    /** A message of the simulated user's to the bridge user, or into `group`. */
    const sendIn = (phone: PhoneNumber, group: RemoteGroupId | undefined, c: ContentElement[]) =>
      group === undefined
        ? this.sim.users.send(phone, local, c)
        : this.sim.users.sendToGroup(phone, jid(group), c);
    const replyOf = (r: MessageReference | undefined) =>
      r === undefined ? [] : [{ kind: "reply" as const, ...ref(r), quote: undefined }];
    switch (event.kind) {
      case "message":
        if (event.group !== undefined) {
          const { group } = event;
          if (matrixUserOf(jid(event.from)) !== undefined) {
            // A local user's message reaches the other logins as the network delivers it.
            if (!this.sent.some((m) => m.to === group && m.id === event.id)) {
              throw new InexpressibleEvent(
                "message",
                "a local user's message the bridge never sent",
              );
            }
            break;
          }
          // One delivery to the bridge for all its members: a second login's report is the same.
          const key = `${group} ${event.from} ${event.id}`;
          if (this.groupSent.has(key)) break;
          this.groupSent.add(key);
          await perform(event.from, (phone) =>
            this.sim.users.sendToGroup(
              phone,
              jid(group),
              [...contentOf(event.content), ...replyOf(event.replyTo)],
              { originId: messageId(event.id) },
            ),
          );
          break;
        }
        await perform(event.from, (phone) =>
          this.sim.users.send(
            phone,
            local,
            [...contentOf(event.content), ...replyOf(event.replyTo)],
            { originId: messageId(event.id) },
          ),
        );
        break;
      case "edit":
        await perform(event.from, (phone) =>
          sendIn(phone, event.group, [
            ...contentOf(event.content),
            { kind: "replace", id: messageId(event.target.id) },
          ]),
        );
        break;
      case "retract":
        await perform(event.from, (phone) =>
          sendIn(phone, event.group, [{ kind: "retract", ...ref(event.target) }]),
        );
        break;
      case "reactions":
        await perform(event.from, (phone) =>
          sendIn(phone, event.group, [
            { kind: "reactions", ...ref(event.target), reactions: [...event.emojis] },
          ]),
        );
        break;
      case "read": {
        const { group } = event;
        await perform(event.from, (phone) =>
          group === undefined
            ? this.sim.users.sendDisplayed(phone, local, ref(event.upTo))
            : this.sim.users.sendGroupTransport(phone, jid(group), {
                kind: "displayed",
                marker: ref(event.upTo),
              }),
        );
        break;
      }
      case "group-info": {
        // The network's snapshot, when the test says (the class comment): the gatekeeper's own.
        await this.readGroups();
        const shape = (info: GroupInfo) =>
          JSON.stringify([info.subject, info.version, info.members.map((m) => [m.id, m.admin])]);
        if (shape(event.info) !== shape(this.groupInfo(event.group))) {
          throw new InexpressibleEvent("group-info", "a snapshot unlike the gatekeeper's group");
        }
        this.made.delivered.add(`${user} ${event.group}`);
        await this.deliver(user, event);
        break;
      }
      case "group-change":
      case "group-subject":
        await this.changeGroup(event);
        break;
      case "typing": {
        const before = this.handled.length;
        const forwarded = await perform(event.from, (phone) =>
          this.sim.users.sendTyping(phone, local, event.typing ? "composing" : "paused"),
        );
        // Typing is neither queued nor acknowledged (§15.8): wait for the core to have it.
        if (forwarded === true) {
          await eventually(
            () =>
              this.handled.slice(before).some((e) => e.kind === "typing" && e.from === event.from),
            "the contact's typing reached the core",
            SETTLE_TIMEOUT_MS,
          );
        }
        break;
      }
      case "request-accepted":
        await perform(event.contact, (phone) => this.sim.users.acceptRequest(phone, local));
        break;
      case "identity-changed":
        // The contact reinstalls WhatsApp: a new identity key, announced to providers (§11).
        await perform(event.contact, (phone) => this.sim.users.resetIdentity(phone));
        break;
      case "state": {
        if (event.state.code !== "logged-out") {
          throw new InexpressibleEvent(`state ${event.state.code}`, "only a revoked number is");
        }
        // WhatsApp withdraws the user's number (a recycled number, §9.1 `revoked`).
        const identity = this.sim.gatekeeper.services.identity;
        const provider = this.sim.gatekeeper.ctx.settings.providers[0];
        if (provider === undefined) throw new Error("the simulator has no provider enlisted");
        const phone = await this.sim.gatekeeper.run(() => identity.phoneOf(provider, local));
        if (phone !== undefined)
          await this.sim.gatekeeper.run(() => identity.revoke(provider, phone));
        break;
      }
      default:
        throw new InexpressibleEvent(event.kind, "no simulated user action produces it");
    }
    await this.settled();
  }

  /**
   * The first simulated admin among `members` creates the group with the others and makes the
   * other admins; the connector's reports of it are withheld until a test delivers its snapshot.
   */
  async newGroup(subject: string, members: GroupMember[]): Promise<RemoteGroupId> {
    const simulated = members.filter((m) => matrixUserOf(jid(m.id)) === undefined);
    // A WhatsApp user makes it if one is an admin, else a local admin's login.
    const creator = simulated.find((m) => m.admin) ?? members.find((m) => m.admin);
    if (creator === undefined) throw new InexpressibleEvent("group", "a group without admins");
    for (const m of simulated) await this.addUser(this.phoneOf(m.id));
    this.made.making += 1;
    try {
      return await this.makeGroup(subject, members, creator);
    } finally {
      this.made.making -= 1;
    }
  }

  private async makeGroup(
    subject: string,
    members: GroupMember[],
    creator: GroupMember,
  ): Promise<RemoteGroupId> {
    const others = members.filter((m) => m !== creator);
    const admins = others.filter((m) => m.admin).map((m) => m.id);
    const user = matrixUserOf(jid(creator.id));
    let group: RemoteGroupId;
    if (user === undefined) {
      const phone = this.phoneOf(creator.id);
      const info = await this.sim.users.createGroup(
        phone,
        subject,
        others.map((m) => jid(m.id)),
      );
      if (info.rejected.length > 0) throw new Error(`not added: ${JSON.stringify(info.rejected)}`);
      group = info.jid as string as RemoteGroupId;
      this.made.groups.add(group);
      if (admins.length > 0) {
        await this.sim.users.changeGroup(phone, info.jid, {
          op: "promote",
          participants: admins.map(jid),
        });
      }
    } else {
      // The connector keeps its logins to itself: the test reaches in.
      const login = (this as unknown as { logins: Map<MatrixUserId, InteropLogin> }).logins.get(
        user,
      );
      if (login === undefined) throw new Error(`${user} is not logged in`);
      const { info, rejected } = await login.createGroup(
        subject,
        others.map((m) => m.id),
      );
      if (rejected.length > 0) throw new Error(`not added: ${JSON.stringify(rejected)}`);
      group = info.id;
      this.made.groups.add(group);
      if (admins.length > 0) await login.setGroupAdmins(group, admins, true);
    }
    await this.settled();
    return group;
  }

  groupInfo(id: RemoteGroupId): GroupInfo {
    const group = this.groups.get(id);
    if (group === undefined) throw new Error(`${id} is no group at the gatekeeper`);
    return { id, subject: group.subject, version: group.version, members: [...group.members] };
  }

  /** A member change or a new subject, made by the simulated member `by` in the next version. */
  private async changeGroup(
    event: Extract<RemoteEvent, { kind: "group-change" | "group-subject" }>,
  ): Promise<void> {
    const current = (await this.sim.gatekeeper.groupStore.get(jid(event.group)))?.version ?? 0;
    const local = event.by !== null && matrixUserOf(jid(event.by)) !== undefined;
    if (local && event.version <= current) {
      // A local user's own change: the network has reported it back already.
      await this.settled();
      return;
    }
    if (event.by === null || local || event.version !== current + 1) {
      throw new InexpressibleEvent(
        event.kind,
        "only a simulated member's change, in the gatekeeper's next version",
      );
    }
    const members = event.kind === "group-change" ? event.members : [];
    for (const m of members) {
      if (matrixUserOf(jid(m.id)) === undefined) await this.addUser(this.phoneOf(m.id));
    }
    const participants = members.map((m) => jid(m.id));
    const request: GroupRequest =
      event.kind === "group-subject"
        ? { op: "subject", subject: event.subject }
        : event.change === "left"
          ? { op: "leave" }
          : { op: CHANGE_OPS[event.change], participants };
    await this.sim.users.changeGroup(this.phoneOf(event.by), jid(event.group), request);
    await this.settled();
  }

  /**
   * Waits until nothing is queued between the core and the simulated users, in either direction
   * (the connector's outbox and inbox, the gatekeeper's queue to the bridge and its pending
   * deliveries to its users), then reads the journal back from the simulator.
   */
  async settled(): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let quiet = 0;
    while (quiet < QUIET_ROUNDS) {
      if (Date.now() > deadline) {
        throw new Error(`the connector and the simulator did not settle: ${await this.depths()}`);
      }
      // After every stanza the gatekeeper received so far.
      await this.sim.gatekeeper.run(async () => undefined);
      quiet = (await this.depths()) === "" ? quiet + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await this.readJournal();
  }

  private async depths(): Promise<string> {
    const { outbox, inbox } = await this.queueDepths();
    const count = async (table: string) =>
      Number(((await this.sim.knex(table).count({ n: "*" })) as { n: number | string }[])[0]?.n);
    const queued = await count("gk_queue");
    const pending = await count("gk_local_pending");
    const all = { outbox, inbox, queued, pending };
    return Object.values(all).every((n) => n === 0) ? "" : JSON.stringify(all);
  }

  /** Rebuilds `sent` and `actions` (same arrays: tests hold them) from the simulated users' logs. */
  private async readJournal(): Promise<void> {
    const sent: SimulatedInterop["sent"] = [];
    const actions: string[] = [];
    // A group message, marker or event reaches every simulated member: counted once.
    const seen = new Set<string>();
    const entries: { to: RemoteUserId; entry: LogEntry }[] = [];
    for (const phone of this.users.keys()) {
      const to = this.sim.users.jidOf(phone) as string as RemoteUserId;
      for (const entry of await this.sim.users.received(phone)) entries.push({ to, entry });
    }
    // The log's ids are the gatekeeper's order of arrival, across its users.
    entries.sort((a, b) => a.entry.id - b.entry.id);
    for (const { to: contact, entry } of entries) {
      const group = entry.data["group"] as RemoteGroupId | undefined;
      const to = group ?? contact;
      if (entry.kind === "group-event") {
        const by = matrixUserOf(entry.data["by"] as BareJid);
        const key = `event ${group} ${entry.data["version"] as number}`;
        if (entry.data["type"] === "participant-left" && by !== undefined && !seen.has(key)) {
          actions.push(`leave ${group}`);
        }
        seen.add(key);
        continue;
      }
      const from = entry.data["from"] as BareJid;
      const user = matrixUserOf(from);
      if (user === undefined) continue;
      if (group !== undefined) {
        const key = `${entry.kind} ${from} ${JSON.stringify(entry.data["originId"] ?? entry.data["ref"])}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      switch (entry.kind) {
        case "message": {
          const id = entry.data["originId"] as RemoteMessageId;
          const content = entry.data["content"] as ContentElement[];
          const { events } = toNeutral(
            { from, id: messageId(id), time: entry.at, content },
            {
              order: 0,
              isRequest: false,
              openMedia: () => () => Promise.reject(new Error("media is not read back")),
            },
          );
          for (const e of events) {
            if (e.kind === "message") {
              sent.push({
                from: user,
                to,
                content: e.content,
                id,
                ...(e.replyTo ? { replyTo: e.replyTo } : {}),
              });
            } else if (e.kind === "edit") actions.push(`edit ${to} ${e.target.id}`);
            else if (e.kind === "retract") actions.push(`retract ${to} ${e.target.id}`);
            else if (e.kind === "reactions") {
              actions.push(`reactions ${to} ${e.target.id} [${e.emojis.join("")}]`);
            }
          }
          break;
        }
        case "displayed":
          actions.push(`read ${to} ${(entry.data["ref"] as { id: string }).id}`);
          break;
        case "chat-state":
          actions.push(`typing ${to} ${entry.data["state"] === "composing"}`);
          break;
      }
    }
    // Blocks and reports are the gatekeeper's state and record (§16): what WhatsApp was told.
    const abuse = this.sim.gatekeeper.services.abuse;
    const blocks = (await this.sim.knex("gk_blocks").orderBy("at")) as {
      owner: BareJid;
      target: BareJid;
      at: number | string;
    }[];
    for (const b of blocks) {
      if (matrixUserOf(b.owner) !== undefined) actions.push(`block ${b.target}`);
    }
    for (const r of await abuse.reports()) {
      if (matrixUserOf(r.reporter) === undefined) continue;
      // The record keeps no block flag: a report that blocks inserts the block in the same tick.
      const blocked = blocks.some(
        (b) => b.owner === r.reporter && b.target === r.target && Number(b.at) === r.at.getTime(),
      );
      const disclosed = r.messages.map((m) => m.originId).join(",");
      actions.push(`report ${r.target} ${r.reason} [${disclosed}] ${blocked}`);
    }
    // A logout unbinds the user's number; the gatekeeper confirms it with <unbound reason="unbind">.
    for (const jid of this.unbound) {
      const user = matrixUserOf(jid);
      if (user !== undefined) actions.push(`logout ${user}`);
    }
    this.sent.splice(0, this.sent.length, ...sent);
    this.actions.splice(0, this.actions.length, ...actions);
    await this.readGroups();
  }

  /** `groups` as the gatekeeper has them now; the members longest-standing first. */
  private async readGroups(): Promise<void> {
    const store = this.sim.gatekeeper.groupStore;
    for (const id of await store.list()) {
      const group = await store.get(id);
      if (group === undefined) continue;
      const members = (await store.members(id)).map((m) => groupMember(m));
      this.groups.set(id as string as RemoteGroupId, {
        subject: group.subject ?? "",
        version: group.version,
        members,
      });
    }
  }

  private phoneOf(contact: RemoteUserId): PhoneNumber {
    const phone = this.addressOf(contact);
    if (phone === undefined)
      throw new BridgeError("invalid-reference", `${contact} is no WhatsApp user`);
    return phone;
  }
}

/** A gatekeeper simulator for one harness, with the test bridge enlisted. */
export function startInteropHost(): Promise<Simulator> {
  return startGatekeeper();
}

/** The bridge user's JID at the gatekeeper (connector/context.ts localJidOf). */
export function localJid(user: MatrixUserId): BareJid {
  return `${localpartFromMatrixUserId(user)}@${BRIDGE_DOMAIN}` as BareJid;
}

function matrixUserOf(jid: BareJid): MatrixUserId | undefined {
  const at = jid.lastIndexOf("@");
  if (jid.slice(at + 1) !== BRIDGE_DOMAIN) return undefined;
  return matrixUserIdFromLocalpart(jid.slice(0, at), "jid");
}

/** The first element named `name` in `el` or below it. */
function findChild(el: XmlElement, name: string): XmlElement | undefined {
  if (el.name === name) return el;
  for (const child of el.children) {
    if (typeof child === "string") continue;
    const found = findChild(child, name);
    if (found !== undefined) return found;
  }
  return undefined;
}

const jid = (contact: RemoteUserId | RemoteGroupId): BareJid => contact as string as BareJid;

/** A test's content as a simulated user's: what the tests report is text or a call. */
function contentOf(content: MessageContent): ContentElement[] {
  switch (content.type) {
    case "text":
      return [{ kind: "body", text: content.text.text }];
    case "call":
      return [
        {
          kind: "call",
          callId: "call-1",
          media: content.media,
          outcome: content.outcome,
          duration: undefined,
          initiator: undefined,
        },
      ];
    default:
      throw new InexpressibleEvent(`content ${content.type}`, "not written for the simulator yet");
  }
}
