import { assertSelf } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { forbidden, invalidParam, notFound } from "../errors.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";
import type { Room } from "../store/room.js";
import { receiptContent } from "../sync.js";

const RECEIPT_TYPES = new Set(["m.read", "m.read.private", "m.fully_read"]);
const MAX_TYPING_MS = 120_000;

/** Typing notifications, read receipts and read markers. */
export function registerEphemeralRoutes(ctx: RouteContext): void {
  const core = ctx.core;

  ctx.authed("PUT", "/rooms/:roomId/typing/:userId", (req, who) => {
    assertSelf(who, param(req, "userId"), "set typing");
    const room = core.room(param(req, "roomId"));
    if (room.membership(who.userId) !== "join")
      throw forbidden(`${who.userId} is not joined to ${room.id}`);
    const body = jsonBody(req);
    if (typeof body["typing"] !== "boolean") throw invalidParam("typing must be a boolean");
    const timeout =
      typeof body["timeout"] === "number" ? Math.min(body["timeout"], MAX_TYPING_MS) : 30_000;
    setTyping(core, room, who.userId, body["typing"] ? timeout : undefined);
    return ok({});
  });

  const receipt = (
    room: Room,
    userId: string,
    receiptType: string,
    eventId: string,
    threadId?: string,
  ): void => {
    if (!RECEIPT_TYPES.has(receiptType)) throw invalidParam(`Unknown receipt type ${receiptType}`);
    if (room.membership(userId) !== "join")
      throw forbidden(`${userId} is not joined to ${room.id}`);
    if (room.findEvent(eventId) === undefined)
      throw notFound(`Event ${eventId} not found in ${room.id}`);
    const pos = core.stream.current + 1;
    if (receiptType === "m.fully_read") {
      // The fully-read marker is room account data, not a receipt (spec, "Fully read markers").
      core.accountData.setForRoom(userId, room.id, "m.fully_read", { event_id: eventId }, pos);
      core.stream.advance();
      return;
    }
    const entry = {
      userId,
      receiptType,
      eventId,
      ts: Date.now(),
      pos,
      ...(threadId === undefined ? {} : { threadId }),
    };
    room.setReceipt(entry);
    core.stream.advance();
    const privateTo = receiptType === "m.read.private" ? userId : undefined;
    core.fanOutEphemeral(room, { type: "m.receipt", content: receiptContent([entry]) }, privateTo);
  };

  ctx.authed("POST", "/rooms/:roomId/receipt/:receiptType/:eventId", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const threadId = jsonBody(req)["thread_id"];
    receipt(
      room,
      who.userId,
      param(req, "receiptType"),
      param(req, "eventId"),
      typeof threadId === "string" ? threadId : undefined,
    );
    return ok({});
  });

  ctx.authed("POST", "/rooms/:roomId/read_markers", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    for (const type of ["m.fully_read", "m.read", "m.read.private"]) {
      const eventId = body[type];
      if (typeof eventId === "string") receipt(room, who.userId, type, eventId);
    }
    return ok({});
  });
}

/** `timeoutMs` undefined stops typing; otherwise typing ends by itself after the timeout. */
export function setTyping(
  core: HomeserverCore,
  room: Room,
  userId: string,
  timeoutMs: number | undefined,
): void {
  const existing = room.typing.get(userId);
  if (existing !== undefined) clearTimeout(existing);
  const wasTyping = room.typing.delete(userId);
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => setTyping(core, room, userId, undefined), timeoutMs);
    timer.unref();
    room.typing.set(userId, timer);
  } else if (!wasTyping) {
    return;
  }
  room.typingPos = core.stream.current + 1;
  core.stream.advance();
  core.fanOutEphemeral(room, { type: "m.typing", content: { user_ids: [...room.typing.keys()] } });
}
