import assert from "node:assert/strict";
import type { BridgeOptions } from "../../src/bridge.js";
import type { RemoteMessageId } from "../../src/core/network.js";
import { matrixUserId, type MatrixUserId } from "../../src/util/ids.js";
import { contactId } from "../core/fakes/network.js";
import { enc } from "../homeserver/testHelpers.js";
import { BOT, startMatrixHarness, type MatrixHarness } from "./harness.js";

export const BOB = "+491701234567";
export const CAROL = "+491707654321";
export const BOB_GHOST = "@whatsapp_491701234567:example.org";

/**
 * The whole bridge (test homeserver, fake network) with alice logged in and two open portals,
 * Bob's and Carol's: the world of the poison-event and fuzz tests.
 */
export interface PortalWorld {
  h: MatrixHarness;
  alice: MatrixUserId;
  mgmt: string;
  portalBob: string;
  portalCarol: string;
  /** A fresh number for ids and transaction ids. */
  next(): number;
  botSays(room: string, pattern: RegExp, after?: number): Promise<string>;
  command(text: string, answer: RegExp): Promise<string>;
  fromContact(phone: string, text: string, id?: string): Promise<void>;
  /** Sends an event as alice through the homeserver; resolves its id. */
  send(room: string, type: string, content: Record<string, unknown>): Promise<string>;
  /** Pushes a transaction to the bridge as the homeserver would; resolves the HTTP status. */
  push(events: readonly Record<string, unknown>[]): Promise<number>;
  /** One message each way in Bob's portal, each arriving exactly once. */
  legitimateTrafficFlows(label: string): Promise<void>;
  dispose(): Promise<void>;
}

export async function startPortalWorld(
  bridgeOptions: Pick<BridgeOptions, "ingressPolicy" | "now" | "ingressHooks"> = {},
  configOverrides: Record<string, unknown> = {},
): Promise<PortalWorld> {
  const h = await startMatrixHarness("spec", bridgeOptions, configOverrides);
  const alice = matrixUserId(h.alice.userId);
  h.network.readsMedia = true;
  let seq = 0;
  const next = () => ++seq;

  const botSays = async (room: string, pattern: RegExp, after = 0): Promise<string> =>
    h.waitFor(async () => {
      const found = (await h.messages(room))
        .slice(after)
        .find((m) => m.sender === BOT && pattern.test(m.body));
      return found?.body;
    }, `the bot to say ${pattern}`);

  let mgmt = "";
  const command = async (text: string, answer: RegExp): Promise<string> => {
    const before = (await h.messages(mgmt)).length;
    await h.say(mgmt, text);
    return botSays(mgmt, answer, before);
  };

  const fromContact = async (phone: string, text: string, id = `m${next()}`): Promise<void> => {
    await h.network.report(alice, {
      kind: "message",
      from: contactId(phone),
      id: id as RemoteMessageId,
      sentAt: new Date(),
      order: next(),
      content: { type: "text", text: { text, spans: [] } },
      isRequest: false,
    });
  };

  const send = async (room: string, type: string, content: Record<string, unknown>) => {
    const sent = await h.asAlice(
      "PUT",
      `/_matrix/client/v3/rooms/${enc(room)}/send/${type}/p${next()}`,
      content,
    );
    assert.equal(sent.status, 200, JSON.stringify(sent.json));
    return sent.json["event_id"] as string;
  };

  const push = async (events: readonly Record<string, unknown>[]): Promise<number> => {
    const answer = await fetch(
      `http://127.0.0.1:${h.appservicePort}/_matrix/app/v1/transactions/direct-${next()}`,
      {
        method: "PUT",
        headers: { authorization: `Bearer ${h.hsToken}`, "content-type": "application/json" },
        body: JSON.stringify({ events }),
      },
    );
    await answer.arrayBuffer();
    return answer.status;
  };

  const created = await h.asAlice("POST", "/_matrix/client/v3/createRoom", {
    invite: [BOT],
    is_direct: true,
    preset: "trusted_private_chat",
  });
  mgmt = created.json["room_id"] as string;
  await botSays(mgmt, /Send `login` to start/);
  await command("login", /decrypts them/);
  await command("phone", /Send your phone number/);
  await command("+491709876543", /Send your code/);
  await command("123456", /^Logged in/);
  const open = async (phone: string, name: RegExp): Promise<string> => {
    h.network.reachable.add(phone);
    await command(`start-chat ${phone}`, name);
    const row = await h.tables.portalRows.get(alice, contactId(phone));
    assert.ok(row?.roomId);
    const joined = await h.asAlice("POST", `/_matrix/client/v3/join/${enc(row.roomId)}`, {});
    assert.equal(joined.status, 200);
    await fromContact(phone, `hello from ${phone}`);
    await botSays(row.roomId, /accepted your chat request/);
    return row.roomId;
  };
  const portalBob = await open(BOB, /Invited you to a new chat with \+49 170 1234567/);
  const portalCarol = await open(CAROL, /Invited you to a new chat with \+49 170 7654321/);

  const legitimateTrafficFlows = async (label: string): Promise<void> => {
    const inbound = `from Bob after ${label} ${next()}`;
    await fromContact(BOB, inbound);
    await h.waitFor(
      async () =>
        (await h.messages(portalBob)).some((m) => m.body === inbound) ? true : undefined,
      "the contact's message in Matrix",
    );
    const outbound = `to Bob after ${label} ${next()}`;
    await h.say(portalBob, outbound);
    const isOut = (m: (typeof h.network.sent)[number]) =>
      m.content.type === "text" && m.content.text.text === outbound;
    await h.waitFor(
      async () => (h.network.sent.some(isOut) ? true : undefined),
      "the user's message at the network",
    );
    await h.hs.appserviceIdle(h.appserviceId);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await h.messages(portalBob)).filter((m) => m.body === inbound).length, 1);
    assert.equal(h.network.sent.filter(isOut).length, 1);
  };

  return {
    h,
    alice,
    mgmt,
    portalBob,
    portalCarol,
    next,
    botSays,
    command,
    fromContact,
    send,
    push,
    legitimateTrafficFlows,
    dispose: () => h.dispose(),
  };
}
