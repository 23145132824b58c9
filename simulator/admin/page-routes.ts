import { decryptMediaBuffer } from "../../src/interop/media/memory.js";
import type { MediaKind } from "../../src/interop/media/kinds.js";
import type { BareJid, PhoneNumber } from "../../src/util/ids.js";
import type { LogEntry } from "../users/log.js";
import { phoneParam, type Route } from "./routes.js";
import { AdminError } from "./server.js";
import type { AdminDeps, RouteInput, RouteResult } from "./types.js";

const DIGITS = "([1-9][0-9]{7,14})";
const JID = "([^/]+)";
/** Media the page shows inline; larger files are listed, not fetched. */
const MAX_PREVIEW_BYTES = 16 * 1024 * 1024;

export interface ChatSummary {
  readonly jid: BareJid;
  /** `pending`: a message request from this contact awaits the user (§10.3); `none`: no conversation yet. */
  readonly state: "pending" | "accepted" | "declined" | "none";
  readonly blocked: boolean;
  /** Id of the latest log entry of this chat (0 when none), for ordering and unread marks. */
  readonly lastId: number;
  readonly messages: number;
}

/** The contact a log entry belongs to: whom it was sent to, or who sent it. */
export function contactOf(entry: LogEntry): string | undefined {
  const value = entry.kind === "sent" ? entry.data["to"] : entry.data["from"];
  return typeof value === "string" ? value.split("/")[0] : undefined;
}

/**
 * What the simulator page needs beyond the admin routes: a user's chats (from the log and the
 * gatekeeper's conversations), one chat's entries since the last poll, the valid verification
 * codes, the bound provider users to start a chat with, and received media, decrypted.
 */
export function pageRoutes(d: AdminDeps): Route[] {
  const { users, gatekeeper } = d;
  const user = async (digits: string | undefined): Promise<PhoneNumber> => {
    const phone = phoneParam(digits);
    if ((await gatekeeper.accounts.get(users.jidOf(phone))) === undefined) {
      throw new AdminError(404, "no-such-user", `${phone} is not a user`);
    }
    return phone;
  };
  const route = (
    method: string,
    path: string,
    run: (i: RouteInput) => Promise<RouteResult>,
  ): Route => ({ method, path: new RegExp(`^${path}$`), run });

  return [
    route("GET", "/verification-codes", async () => ({
      body: {
        codes: (await gatekeeper.services.identity.validCodes()).map((c) => ({
          phone: c.phone,
          code: c.code,
          expires: c.expires.toISOString(),
        })),
      },
    })),
    route("GET", "/bindings", async () => ({
      body: { bindings: await gatekeeper.services.identity.bindings() },
    })),
    route("GET", `/users/${DIGITS}/blocks`, async ({ params }) => {
      const phone = await user(params[0]);
      return { body: { blocked: await gatekeeper.services.abuse.blocked(users.jidOf(phone)) } };
    }),
    route("GET", `/users/${DIGITS}/chats`, async ({ params }) => {
      const phone = await user(params[0]);
      const me = users.jidOf(phone);
      const chats = new Map<string, { lastId: number; messages: number }>();
      const touch = (jid: string, entry?: LogEntry) => {
        const chat = chats.get(jid) ?? { lastId: 0, messages: 0 };
        if (entry !== undefined) {
          chat.lastId = Math.max(chat.lastId, entry.id);
          if (entry.kind === "message" || entry.kind === "sent") chat.messages += 1;
        }
        chats.set(jid, chat);
      };
      for (const entry of await users.history(phone)) {
        const jid = contactOf(entry);
        if (jid !== undefined && jid !== me) touch(jid, entry);
      }
      const states = new Map<string, ChatSummary["state"]>();
      for (const c of await gatekeeper.conversations.ofGatekeeperUser(me)) {
        states.set(c.providerJid, c.state);
        touch(c.providerJid);
      }
      const blocked = new Set<string>(await gatekeeper.services.abuse.blocked(me));
      for (const jid of blocked) touch(jid);
      const list: ChatSummary[] = [...chats].map(([jid, c]) => ({
        jid: jid as BareJid,
        state: states.get(jid) ?? "none",
        blocked: blocked.has(jid),
        ...c,
      }));
      list.sort((a, b) => b.lastId - a.lastId || a.jid.localeCompare(b.jid));
      return { body: { chats: list } };
    }),
    route("GET", `/users/${DIGITS}/chats/${JID}`, async ({ params, query }) => {
      const phone = await user(params[0]);
      const contact = params[1] ?? "";
      const me = users.jidOf(phone);
      const after = Number(query.get("after") ?? "0");
      if (!Number.isSafeInteger(after) || after < 0) {
        throw new AdminError(400, "invalid-request", "after: a log entry id");
      }
      const entries = (await users.history(phone, after)).filter((e) => contactOf(e) === contact);
      const conversation = await gatekeeper.conversations.get(contact as BareJid, me);
      return {
        body: {
          jid: contact,
          me,
          state: conversation?.state ?? "none",
          blocked: await gatekeeper.services.abuse.isBlocked(me, contact as BareJid),
          entries,
        },
      };
    }),
    route("GET", `/users/${DIGITS}/media/([0-9]{1,15})`, async ({ params }) => {
      const phone = await user(params[0]);
      const id = Number(params[1]);
      const [entry] = await users.history(phone, id - 1);
      const media = entry?.id === id ? mediaOf(entry) : undefined;
      if (media === undefined)
        throw new AdminError(404, "no-such-media", `no media in entry ${id}`);
      if (media.size > MAX_PREVIEW_BYTES) {
        throw new AdminError(413, "too-large", `${media.size} bytes is too large to preview`);
      }
      const store = gatekeeper.services.media;
      if (store === undefined || !media.url.startsWith(`${store.origin}/`)) {
        throw new AdminError(404, "no-such-media", "the media is not in this simulator's store");
      }
      const response = await fetch(media.url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) {
        throw new AdminError(404, "no-such-media", `the media store answered ${response.status}`);
      }
      const data = decryptMediaBuffer(new Uint8Array(await response.arrayBuffer()), {
        kind: media.kind,
        mediaKey: Buffer.from(media.key, "base64"),
        size: media.size,
        sha256: Buffer.from(media.sha256, "base64"),
        encSha256: Buffer.from(media.encSha256, "base64"),
      });
      return { raw: { data, type: safeType(media.type) } };
    }),
  ];
}

interface LoggedMedia {
  kind: MediaKind;
  url: string;
  type: string;
  size: number;
  key: string;
  sha256: string;
  encSha256: string;
}

function mediaOf(entry: LogEntry): LoggedMedia | undefined {
  const content = entry.data["content"];
  if (!Array.isArray(content)) return undefined;
  const element = (content as { kind?: string; media?: LoggedMedia }[]).find(
    (e) => e.kind === "media",
  );
  return element?.media;
}

/** Only types a browser shows as media, never as a document that could run script. */
function safeType(type: string): string {
  return /^(image\/(png|jpeg|gif|webp)|audio\/[a-z0-9.+-]+|video\/(mp4|webm|ogg))$/.test(type)
    ? type
    : "application/octet-stream";
}
