import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { forbidden, invalidParam, notFound } from "../errors.js";
import { setMembership } from "../roomOps.js";
import { jsonBody, ok, param, type HsReply, type HsRequest } from "../router.js";
import type { RouteContext } from "../server.js";
import type { Room, StoredEvent } from "../store/room.js";
import type { JsonObject } from "../types.js";

/** Sending, state, redaction and reading of room events. */
export function registerRoomEventRoutes(ctx: RouteContext): void {
  const core = ctx.core;

  // Events above 65,536 bytes answer 413 M_TOO_LARGE: the one check is assertEventSize (events.ts),
  // applied by core.persist to this route and every other that creates an event.
  ctx.authed("PUT", "/rooms/:roomId/send/:type/:txnId", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const content = jsonBody(req);
    const eventId = idempotent(core, who, req, () => {
      const draft = { type: param(req, "type"), sender: who.userId, content };
      return core.persist(room, draft, sendOptions(req, who)).event.event_id;
    });
    return ok({ event_id: eventId });
  });

  const putState = (req: HsRequest, who: Requester): HsReply => {
    const room = core.room(param(req, "roomId"));
    const type = param(req, "type");
    const stateKey = req.params["stateKey"] ?? "";
    const content = jsonBody(req);
    const stored =
      type === "m.room.member"
        ? memberViaState(core, room, who, stateKey, content, req)
        : core.persist(
            room,
            { type, sender: who.userId, state_key: stateKey, content },
            timestampOf(req, who),
          );
    return ok({ event_id: stored.event.event_id });
  };
  ctx.authed("PUT", "/rooms/:roomId/state/:type/:stateKey", putState);
  ctx.authed("PUT", "/rooms/:roomId/state/:type", putState);

  const getState = (req: HsRequest, who: Requester): HsReply => {
    const room = core.room(param(req, "roomId"));
    const type = param(req, "type");
    const stateKey = req.params["stateKey"] ?? "";
    const found = visibleState(room, who.userId).find(
      (s) => s.event.type === type && s.event.state_key === stateKey,
    );
    if (found === undefined)
      throw notFound(`No ${type} state with key "${stateKey}" in ${room.id}`);
    return ok(found.event.content);
  };
  ctx.authed("GET", "/rooms/:roomId/state/:type/:stateKey", getState);
  ctx.authed("GET", "/rooms/:roomId/state/:type", getState);
  ctx.authed("GET", "/rooms/:roomId/state", (req, who) => {
    const room = core.room(param(req, "roomId"));
    return ok(visibleState(room, who.userId).map((s) => core.clientEvent(s)));
  });

  ctx.authed("GET", "/rooms/:roomId/members", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const wanted = req.query.get("membership");
    const unwanted = req.query.get("not_membership");
    const chunk = visibleState(room, who.userId)
      .filter((s) => s.event.type === "m.room.member")
      .filter((s) => wanted === null || s.event.content["membership"] === wanted)
      .filter((s) => unwanted === null || s.event.content["membership"] !== unwanted)
      .map((s) => core.clientEvent(s));
    return ok({ chunk });
  });
  ctx.authed("GET", "/rooms/:roomId/joined_members", (req, who) => {
    const room = core.room(param(req, "roomId"));
    if (room.membership(who.userId) !== "join" && !appserviceSees(who, room)) {
      throw forbidden(`${who.userId} is not joined to ${room.id}`);
    }
    const joined: Record<string, JsonObject> = {};
    for (const userId of room.members("join")) {
      const content = room.getState("m.room.member", userId)?.content ?? {};
      joined[userId] = {
        display_name: content["displayname"] ?? null,
        avatar_url: content["avatar_url"] ?? null,
      };
    }
    return ok({ joined });
  });

  ctx.authed("GET", "/rooms/:roomId/event/:eventId", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const stored = room.findEvent(param(req, "eventId"));
    if (stored === undefined || !canSee(room, who.userId, stored)) {
      throw notFound(`Event ${param(req, "eventId")} not found in ${room.id}`);
    }
    return ok(core.clientEvent(stored, who.tokenKey));
  });

  ctx.authed("PUT", "/rooms/:roomId/redact/:eventId/:txnId", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const target = param(req, "eventId");
    const body = jsonBody(req);
    const eventId = idempotent(core, who, req, () => {
      const original = room.findEvent(target);
      const own = original?.event.sender === who.userId;
      if (!own && room.userPowerLevel(who.userId) < room.actionLevel("redact")) {
        throw forbidden(`${who.userId} may not redact others' events in ${room.id}`);
      }
      const content: JsonObject =
        typeof body["reason"] === "string" ? { reason: body["reason"] } : {};
      // v11 moved `redacts` into content; clients of every version still read the top-level key.
      if (room.versionNumber >= 11) content["redacts"] = target;
      const draft = { type: "m.room.redaction", sender: who.userId, content, redacts: target };
      return core.persist(room, draft, sendOptions(req, who)).event.event_id;
    });
    return ok({ event_id: eventId });
  });

  ctx.authed("GET", "/rooms/:roomId/messages", (req, who) => {
    const room = core.room(param(req, "roomId"));
    if (room.membership(who.userId) === undefined)
      throw forbidden(`${who.userId} is not in ${room.id}`);
    return ok(paginate(core, room, who, req));
  });
}

/** Same transaction id from the same device and endpoint answers the first result (spec). */
function idempotent(
  core: HomeserverCore,
  who: Requester,
  req: HsRequest,
  produce: () => string,
): string {
  const key = `${who.tokenKey}|${req.method}|${req.path}`;
  const previous = core.txnResults.get(key);
  if (previous !== undefined) return previous;
  const result = produce();
  core.txnResults.set(key, result);
  return result;
}

function timestampOf(req: HsRequest, who: Requester): { ts?: number } {
  const ts = req.query.get("ts");
  // Timestamp massaging is an appservice privilege (AS API "Timestamp massaging").
  if (ts === null || who.appservice === undefined) return {};
  if (!/^\d+$/.test(ts)) throw invalidParam(`ts must be an integer, not ${ts}`);
  return { ts: Number(ts) };
}

function sendOptions(
  req: HsRequest,
  who: Requester,
): { ts?: number; txn: { tokenKey: string; txnId: string } } {
  return { ...timestampOf(req, who), txn: { tokenKey: who.tokenKey, txnId: param(req, "txnId") } };
}

function memberViaState(
  core: HomeserverCore,
  room: Room,
  who: Requester,
  target: string,
  content: JsonObject,
  req: HsRequest,
): StoredEvent {
  const { membership, ...extra } = content;
  if (typeof membership !== "string") throw invalidParam("A member event needs a membership");
  return setMembership(core, room, who.userId, target, membership, extra, timestampOf(req, who));
}

/** Current state for members, the state at their departure for those who left (as Synapse does). */
function visibleState(room: Room, userId: string): StoredEvent[] {
  const member = room.membershipEvent(userId);
  const membership = member?.event.content["membership"];
  if (membership === "join") return room.currentStateStored();
  if (member !== undefined && (membership === "leave" || membership === "ban")) {
    return room.stateBefore(member.index + 1);
  }
  throw forbidden(`${userId} is not in room ${room.id}`);
}

function canSee(room: Room, userId: string, stored: StoredEvent): boolean {
  const member = room.membershipEvent(userId);
  const membership = member?.event.content["membership"];
  if (membership === "join") return true;
  return (
    member !== undefined &&
    (membership === "leave" || membership === "ban") &&
    stored.index <= member.index
  );
}

function appserviceSees(who: Requester, room: Room): boolean {
  return who.appservice !== undefined && who.appservice.interestedInRoom(room);
}

/** `/messages` with `p{index}` tokens (the same tokens sync hands out as prev_batch). */
function paginate(core: HomeserverCore, room: Room, who: Requester, req: HsRequest): JsonObject {
  const dir = req.query.get("dir") ?? "b";
  if (dir !== "b" && dir !== "f") throw invalidParam("dir must be b or f");
  const limit = Math.min(Math.max(Number(req.query.get("limit") ?? 10) || 10, 1), 1000);
  const from = req.query.get("from");
  const member = room.membershipEvent(who.userId);
  const end =
    member !== undefined && member.event.content["membership"] !== "join"
      ? member.index + 1
      : room.events.length;
  let start = from === null ? (dir === "b" ? end : 0) : parseToken(from, room);
  start = Math.min(Math.max(start, 0), end);
  const slice =
    dir === "b"
      ? room.events.slice(Math.max(0, start - limit), start).reverse()
      : room.events.slice(start, Math.min(end, start + limit));
  const next = dir === "b" ? Math.max(0, start - limit) : Math.min(end, start + limit);
  const response: JsonObject = {
    start: `p${start}`,
    chunk: slice.map((s) => core.clientEvent(s, who.tokenKey)),
  };
  if ((dir === "b" && next > 0) || (dir === "f" && next < end)) response["end"] = `p${next}`;
  return response;
}

function parseToken(token: string, room: Room): number {
  const page = /^p(\d+)$/.exec(token);
  if (page?.[1] !== undefined) return Number(page[1]);
  const sync = /^s(\d+)$/.exec(token);
  if (sync?.[1] !== undefined) {
    const pos = Number(sync[1]);
    const firstAfter = room.events.findIndex((e) => e.pos > pos);
    return firstAfter < 0 ? room.events.length : firstAfter;
  }
  throw invalidParam(`Unknown pagination token ${token}`);
}
