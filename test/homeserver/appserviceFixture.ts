import assert from "node:assert/strict";
import {
  createTestHomeserver,
  type AppserviceRegistration,
  type HomeserverProfile,
  type TestHomeserver,
  type TestHomeserverOptions,
} from "./index.js";
import { api, enc, FakeAppservice, type ReceivedRequest } from "./testHelpers.js";

/** Shared set-up of the appservice tests: a registration, a fake appservice and a bridged room. */
export const AS_TOKEN = "as-secret-token";
export const HS_TOKEN = "hs-secret-token";

export function registration(
  url: string,
  extra: Partial<AppserviceRegistration> = {},
): AppserviceRegistration {
  return {
    id: "whatsapp",
    url,
    as_token: AS_TOKEN,
    hs_token: HS_TOKEN,
    sender_localpart: "wabot",
    namespaces: {
      users: [{ exclusive: true, regex: "@_wa_.*:hs\\.test" }],
      aliases: [{ exclusive: true, regex: "#_wa_.*:hs\\.test" }],
      rooms: [],
    },
    rate_limited: false,
    ...extra,
  };
}

export interface Setup {
  hs: TestHomeserver;
  as: FakeAppservice;
  roomId: string;
  bobToken: string;
  ghost: string;
}

/** A room where a real user (bob) and a ghost of the appservice are joined. */
export async function setUp(
  profile: HomeserverProfile,
  extra: Partial<AppserviceRegistration> = {},
  options: Partial<TestHomeserverOptions> = {},
): Promise<Setup> {
  const as = new FakeAppservice();
  const url = await as.start();
  const hs = createTestHomeserver({
    serverName: "hs.test",
    profile,
    appservices: [registration(url, extra)],
    retryInitialMs: 20,
    retryMaxMs: 200,
    ...options,
  });
  await hs.start();
  const bob = hs.registerUser("bob");
  const reg = await api(hs.url, "POST", "/_matrix/client/v3/register", {
    token: AS_TOKEN,
    body: { type: "m.login.application_service", username: "_wa_123", inhibit_login: true },
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.json));
  const ghost = "@_wa_123:hs.test";
  const created = await api(hs.url, "POST", "/_matrix/client/v3/createRoom", {
    token: bob.accessToken,
    body: { preset: "private_chat", invite: [ghost], is_direct: true },
  });
  const roomId = created.json["room_id"] as string;
  const joined = await api(
    hs.url,
    "POST",
    `/_matrix/client/v3/join/${enc(roomId)}?user_id=${enc(ghost)}`,
    { token: AS_TOKEN },
  );
  assert.equal(joined.status, 200, JSON.stringify(joined.json));
  await hs.appserviceIdle("whatsapp");
  return { hs, as, roomId, bobToken: bob.accessToken, ghost };
}

export async function sendText(s: Setup, body: string, txnId: string): Promise<string> {
  const sent = await api(
    s.hs.url,
    "PUT",
    `/_matrix/client/v3/rooms/${enc(s.roomId)}/send/m.room.message/${txnId}`,
    {
      token: s.bobToken,
      body: { msgtype: "m.text", body },
    },
  );
  assert.equal(sent.status, 200, JSON.stringify(sent.json));
  return sent.json["event_id"] as string;
}

export function eventsOf(requests: ReceivedRequest[]): Record<string, unknown>[] {
  return requests.flatMap((r) => (r.body["events"] as Record<string, unknown>[] | undefined) ?? []);
}
