import { xml } from "../../src/interop/codec/xml.js";
import {
  classifyMessage,
  encodeAck,
  decodeGroupEvent,
  decodeGroupInfo,
  encodeCreate,
  encodeGroupChange,
  encodeGroupInfoQuery,
  encodeLeave,
  encodeSubjectChange,
  type GroupEvent,
  type GroupInfo,
  type XmlElement,
} from "../../src/interop/codec/index.js";
import { SIMULATOR_FEATURES } from "../../simulator/config.js";
import type { BareJid, StanzaId } from "../../src/util/ids.js";
import { phoneNumber } from "../../src/util/ids.js";
import { BOB, child, childNamed, OTHER_PROVIDER, providerCrypto, TestProvider } from "./harness.js";
import { ProviderUser } from "./provider-user.js";
import { makeWorld, type World } from "./world.js";

export const CAROL = "carol=3aother.example@other.example" as BareJid;
export const PHONE2 = phoneNumber("+491705550000");
export const GK2 = "491705550000@wa.example" as BareJid;

/**
 * The world of test/simulator/world.ts plus Bob (same provider as Alice), Carol at a second
 * provider domain (its own connection, groups negotiated) and a second WhatsApp user.
 */
export interface GroupWorld extends World {
  bob: ProviderUser;
  other: TestProvider;
  carol: ProviderUser;
}

export async function makeGroupWorld(
  options: Parameters<typeof makeWorld>[0] & { otherFeatures?: string[] } = {},
): Promise<GroupWorld> {
  const world = await makeWorld(options);
  const bobStore = await providerCrypto(world.clock.now);
  const bob = await ProviderUser.create(bobStore.crypto, world.provider, BOB);
  await bob.publish();
  const other = await TestProvider.connect(world.sim.service, OTHER_PROVIDER);
  await other.hello(OTHER_PROVIDER, options.otherFeatures ?? [...SIMULATOR_FEATURES]);
  const carolStore = await providerCrypto(world.clock.now);
  const carol = await ProviderUser.create(carolStore.crypto, other, CAROL);
  await carol.publish();
  await world.sim.users.create({ phone: PHONE2, devices: 1 });
  const close = world.close.bind(world);
  return Object.assign(world, {
    bob,
    other,
    carol,
    async close() {
      await other.close();
      await close();
      // Their Signal stores are databases of their own; a pool left open keeps its reaping
      // interval, and with it the test process, running.
      await bobStore.knex.destroy();
      await carolStore.knex.destroy();
    },
  });
}

const groupIq = (p: TestProvider, from: string, to: string, type: "get" | "set", el: XmlElement) =>
  p.iq(type, el, { from, to });

export const groupOps = {
  create: (p: TestProvider, from: string, participants: BareJid[], subject?: string) =>
    groupIq(p, from, "g.wa.example", "set", encodeCreate({ subject, participants })),
  info: (p: TestProvider, from: string, group: string) =>
    groupIq(p, from, group, "get", encodeGroupInfoQuery()),
  change: (
    p: TestProvider,
    from: string,
    group: string,
    op: "add" | "remove" | "promote" | "demote",
    jids: BareJid[],
  ) => groupIq(p, from, group, "set", encodeGroupChange(op, jids)),
  subject: (p: TestProvider, from: string, group: string, subject: string) =>
    groupIq(p, from, group, "set", encodeSubjectChange(subject)),
  leave: (p: TestProvider, from: string, group: string) =>
    groupIq(p, from, group, "set", encodeLeave()),
};

export function groupOf(iq: XmlElement): GroupInfo {
  if (iq.attrs.type !== "result") throw new Error(`expected a result: ${iq.toString()}`);
  return decodeGroupInfo(child(iq));
}

/** Group events delivered to `to` on this provider connection, in arrival order. */
export function eventsFor(p: TestProvider, to: string, group?: string): GroupEvent[] {
  return p.received
    .filter(
      (s) =>
        s.name === "message" &&
        s.attrs.to === to &&
        (group === undefined || s.attrs.from === group) &&
        childNamed(s, "event") !== undefined,
    )
    .map((s) => decodeGroupEvent(childNamed(s, "event") as XmlElement));
}

/** Acks deliveries from group JIDs as a provider does: to g.wa.example, their `by` (§15.5). */
export async function ackGroup(p: TestProvider, deliveries: XmlElement[]): Promise<void> {
  const ids = deliveries
    .map((d) => classifyMessage(d).stanzaId)
    .filter((s): s is NonNullable<typeof s> => s !== undefined);
  if (ids.length === 0) return;
  await p.send(
    xml(
      "message",
      { id: `ack-${Math.random().toString(36).slice(2)}`, from: p.domain, to: "g.wa.example" },
      encodeAck(ids.map((s) => s.id as StanzaId)),
    ),
  );
}
