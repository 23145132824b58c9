import type { Requester } from "./auth.js";
import type { HomeserverCore } from "./core.js";
import { MatrixError } from "./errors.js";
import { isObject, strippedState, withoutRoomId } from "./events.js";
import type { HsRequest } from "./router.js";
import type { Room, StoredEvent } from "./store/room.js";
import type { JsonObject } from "./types.js";

interface SyncParams {
  since: number | undefined;
  fullState: boolean;
  timelineLimit: number;
  includeLeave: boolean;
}

const DEFAULT_TIMELINE_LIMIT = 10;
/** State types shown to invitees (spec: "stripped state" recommendations). */
const INVITE_STATE_TYPES = [
  "m.room.create",
  "m.room.join_rules",
  "m.room.name",
  "m.room.avatar",
  "m.room.canonical_alias",
  "m.room.encryption",
  "m.room.topic",
];

/** `GET /sync`: long-polls until something changed for the user after `since`, or the timeout. */
export async function handleSync(
  core: HomeserverCore,
  req: HsRequest,
  who: Requester,
): Promise<JsonObject> {
  const params = syncParams(core, req, who);
  const timeout = Math.min(Math.max(Number(req.query.get("timeout") ?? 0) || 0, 0), 60_000);
  const deadline = Date.now() + timeout;
  for (;;) {
    const upto = core.stream.current;
    const response = buildSync(core, who, params, upto);
    const remaining = deadline - Date.now();
    if (
      params.since === undefined ||
      hasContent(response) ||
      remaining <= 0 ||
      req.signal.aborted
    ) {
      return response;
    }
    await core.stream.waitForChange(remaining, req.signal);
    if (core.stream.current === upto) return response;
  }
}

function syncParams(core: HomeserverCore, req: HsRequest, who: Requester): SyncParams {
  const sinceRaw = req.query.get("since");
  let since: number | undefined;
  if (sinceRaw !== null) {
    const match = /^s(\d+)$/.exec(sinceRaw);
    if (match?.[1] === undefined)
      throw new MatrixError(400, "M_INVALID_PARAM", `Unknown since token ${sinceRaw}`);
    since = Number(match[1]);
  }
  const filter = resolveFilter(core, who, req.query.get("filter"));
  const room = isObject(filter["room"]) ? filter["room"] : {};
  const timeline = isObject(room["timeline"]) ? room["timeline"] : {};
  const limit = timeline["limit"];
  return {
    since,
    fullState: req.query.get("full_state") === "true",
    timelineLimit: typeof limit === "number" && limit > 0 ? limit : DEFAULT_TIMELINE_LIMIT,
    includeLeave: room["include_leave"] === true,
  };
}

function resolveFilter(core: HomeserverCore, who: Requester, raw: string | null): JsonObject {
  if (raw === null) return {};
  if (raw.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (isObject(parsed)) return parsed;
    } catch {
      // Falls through to the error below.
    }
    throw new MatrixError(400, "M_BAD_JSON", "The inline filter is not a JSON object");
  }
  const saved = core.accountData.filter(who.userId, raw);
  if (saved === undefined)
    throw new MatrixError(400, "M_INVALID_PARAM", `No filter ${raw} for ${who.userId}`);
  return saved;
}

function hasContent(response: JsonObject): boolean {
  const rooms = response["rooms"] as Record<string, Record<string, unknown>>;
  const roomCount = Object.values(rooms).reduce((n, section) => n + Object.keys(section).length, 0);
  const accountData = (response["account_data"] as { events: unknown[] }).events.length;
  const toDevice = (response["to_device"] as { events: unknown[] }).events.length;
  const lists = response["device_lists"] as { changed: unknown[]; left: unknown[] };
  return (
    roomCount > 0 ||
    accountData > 0 ||
    toDevice > 0 ||
    lists.changed.length > 0 ||
    lists.left.length > 0
  );
}

function buildSync(
  core: HomeserverCore,
  who: Requester,
  params: SyncParams,
  upto: number,
): JsonObject {
  const join: Record<string, JsonObject> = {};
  const invite: Record<string, JsonObject> = {};
  const leave: Record<string, JsonObject> = {};
  const since = params.since;
  for (const room of core.rooms.values()) {
    const member = room.membershipEvent(who.userId);
    if (member === undefined || member.pos > upto) continue;
    const membership = member.event.content["membership"];
    const changed = since === undefined || member.pos > since;
    if (membership === "join") {
      const section = joinedRoom(core, room, who, params, upto, changed || params.fullState);
      if (section !== undefined) join[room.id] = section;
    } else if (membership === "invite" && changed) {
      invite[room.id] = { invite_state: { events: inviteState(room, member) } };
    } else if ((membership === "leave" || membership === "ban") && changed) {
      if (since === undefined && !params.includeLeave) continue;
      leave[room.id] = leftRoom(core, room, who, params, member);
    }
  }
  const accountSince = since ?? -1;
  const toDevice =
    who.deviceId === null ? [] : core.e2ee.toDevice.take(who.userId, who.deviceId, since, upto);
  // An initial sync reports no device-list changes (the client queries keys it needs).
  const deviceLists =
    since === undefined
      ? { changed: [], left: [] }
      : core.e2ee.deviceListChanges(who.userId, since, upto);
  const keys = core.e2ee.keyCounts(who.userId, who.deviceId);
  return {
    next_batch: `s${upto}`,
    rooms: { join, invite, leave, knock: {} },
    account_data: { events: core.accountData.changedSince(who.userId, accountSince) },
    presence: { events: [] },
    to_device: {
      events: toDevice.map((m) => ({ type: m.type, sender: m.sender, content: m.content })),
    },
    device_lists: deviceLists,
    device_one_time_keys_count: keys.counts,
    device_unused_fallback_key_types: keys.fallback,
  };
}

function joinedRoom(
  core: HomeserverCore,
  room: Room,
  who: Requester,
  params: SyncParams,
  upto: number,
  fromScratch: boolean,
): JsonObject | undefined {
  const since = params.since ?? -1;
  const visible = room.events.filter((e) => e.pos <= upto);
  const candidates = fromScratch ? visible : visible.filter((e) => e.pos > since);
  const timeline = candidates.slice(-params.timelineLimit);
  const first = timeline[0];
  const startIndex = first?.index ?? visible.length;
  const limited = candidates.length > timeline.length || (fromScratch && startIndex > 0);
  let state: StoredEvent[] = [];
  if (fromScratch) {
    state = room.stateBefore(startIndex);
  } else if (limited) {
    // State that changed in the gap between `since` and the start of the returned timeline.
    const gap = new Map<string, StoredEvent>();
    for (const e of visible) {
      if (e.pos > since && e.index < startIndex && e.event.state_key !== undefined) {
        gap.set(`${e.event.type}\u0000${e.event.state_key}`, e);
      }
    }
    state = [...gap.values()];
  }
  const ephemeral = ephemeralEvents(room, who.userId, fromScratch ? -1 : since);
  const accountData = core.accountData.roomChangedSince(
    who.userId,
    room.id,
    fromScratch ? -1 : since,
  );
  if (
    !fromScratch &&
    timeline.length === 0 &&
    state.length === 0 &&
    ephemeral.length === 0 &&
    accountData.length === 0
  ) {
    return undefined;
  }
  const format = (e: StoredEvent): unknown => withoutRoomId(core.clientEvent(e, who.tokenKey));
  return {
    timeline: { events: timeline.map(format), limited, prev_batch: `p${startIndex}` },
    state: { events: state.map(format) },
    ephemeral: { events: ephemeral },
    account_data: { events: accountData },
    summary: {
      "m.joined_member_count": room.members("join").length,
      "m.invited_member_count": room.members("invite").length,
    },
    unread_notifications: { notification_count: 0, highlight_count: 0 },
  };
}

function leftRoom(
  core: HomeserverCore,
  room: Room,
  who: Requester,
  params: SyncParams,
  member: StoredEvent,
): JsonObject {
  const since = params.since ?? -1;
  const candidates = room.events.filter((e) => e.pos > since && e.index <= member.index);
  const timeline = candidates.slice(-params.timelineLimit);
  const startIndex = timeline[0]?.index ?? member.index;
  const limited = candidates.length > timeline.length;
  const format = (e: StoredEvent): unknown => withoutRoomId(core.clientEvent(e, who.tokenKey));
  return {
    timeline: { events: timeline.map(format), limited, prev_batch: `p${startIndex}` },
    state: {
      events: limited || params.since === undefined ? room.stateBefore(startIndex).map(format) : [],
    },
    account_data: { events: [] },
  };
}

function inviteState(room: Room, invite: StoredEvent): JsonObject[] {
  const events: JsonObject[] = [];
  for (const type of INVITE_STATE_TYPES) {
    const e = room.getState(type);
    if (e !== undefined) events.push(strippedState(e));
  }
  const inviter = room.getState("m.room.member", invite.event.sender);
  if (inviter !== undefined) events.push(strippedState(inviter));
  events.push({
    ...strippedState(invite.event),
    event_id: invite.event.event_id,
    origin_server_ts: invite.event.origin_server_ts,
  });
  return events;
}

/** Typing (if changed) and receipts after `since`; private receipts only for their owner. */
function ephemeralEvents(room: Room, userId: string, since: number): JsonObject[] {
  const out: JsonObject[] = [];
  if (room.typingPos > since || (since < 0 && room.typing.size > 0)) {
    out.push({ type: "m.typing", content: { user_ids: [...room.typing.keys()] } });
  }
  const receipts = room.receipts.filter(
    (r) => r.pos > since && (r.receiptType !== "m.read.private" || r.userId === userId),
  );
  if (receipts.length > 0) out.push({ type: "m.receipt", content: receiptContent(receipts) });
  return out;
}

export function receiptContent(
  receipts: readonly {
    userId: string;
    receiptType: string;
    eventId: string;
    ts: number;
    threadId?: string;
  }[],
): JsonObject {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {};
  for (const r of receipts) {
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.receiptType] ??= {});
    byUser[r.userId] =
      r.threadId === undefined ? { ts: r.ts } : { ts: r.ts, thread_id: r.threadId };
  }
  return content;
}
