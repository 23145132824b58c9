import { queryAlias, queryUser } from "../appservice/queries.js";
import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { forbidden, invalidParam, missingParam, notFound } from "../errors.js";
import { createRoom, setMembership } from "../roomOps.js";
import { jsonBody, ok, param, type HsReply, type HsRequest } from "../router.js";
import type { RouteContext } from "../server.js";
import type { Room } from "../store/room.js";

/** createRoom, join, leave, invite, kick, ban, unban, forget, joined_rooms. */
export function registerMembershipRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.authed("POST", "/createRoom", (req, who) => {
    const room = createRoom(core, who, jsonBody(req));
    return ok({ room_id: room.id });
  });

  const join = async (req: HsRequest, who: Requester, target: string): Promise<HsReply> => {
    const room = await resolveRoom(core, target);
    const body = jsonBody(req);
    // Joining again is a no-op, as on Synapse when the profile did not change.
    if (room.membership(who.userId) !== "join") {
      const extra = typeof body["reason"] === "string" ? { reason: body["reason"] } : {};
      setMembership(core, room, who.userId, who.userId, "join", extra);
    }
    return ok({ room_id: room.id });
  };
  ctx.authed("POST", "/join/:roomIdOrAlias", (req, who) =>
    join(req, who, param(req, "roomIdOrAlias")),
  );
  ctx.authed("POST", "/rooms/:roomId/join", (req, who) => join(req, who, param(req, "roomId")));

  ctx.authed("POST", "/rooms/:roomId/leave", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    setMembership(core, room, who.userId, who.userId, "leave", reasonOf(body));
    return ok({});
  });
  ctx.authed("POST", "/rooms/:roomId/forget", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const membership = room.membership(who.userId);
    if (membership === "join" || membership === "invite")
      throw invalidParam("Leave the room before forgetting it");
    return ok({});
  });

  ctx.authed("POST", "/rooms/:roomId/invite", async (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    const target = targetOf(body);
    if (target.endsWith(`:${core.serverName}`) && core.users.get(target) === undefined) {
      if (!(await queryUser(core, target))) throw notFound(`Unknown user ${target}`);
    }
    const extra = { ...reasonOf(body), ...(body["is_direct"] === true ? { is_direct: true } : {}) };
    setMembership(core, room, who.userId, target, "invite", extra);
    return ok({});
  });
  ctx.authed("POST", "/rooms/:roomId/kick", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    const target = targetOf(body);
    const membership = room.membership(target);
    if (membership !== "join" && membership !== "invite")
      throw forbidden(`${target} is not in the room`);
    setMembership(core, room, who.userId, target, "leave", reasonOf(body));
    return ok({});
  });
  ctx.authed("POST", "/rooms/:roomId/ban", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    setMembership(core, room, who.userId, targetOf(body), "ban", reasonOf(body));
    return ok({});
  });
  ctx.authed("POST", "/rooms/:roomId/unban", (req, who) => {
    const room = core.room(param(req, "roomId"));
    const body = jsonBody(req);
    const target = targetOf(body);
    if (room.membership(target) !== "ban") throw forbidden(`${target} is not banned`);
    setMembership(core, room, who.userId, target, "leave", reasonOf(body));
    return ok({});
  });

  ctx.authed("GET", "/joined_rooms", (_req, who) =>
    ok({ joined_rooms: core.roomsWithMembership(who.userId, "join").map((r) => r.id) }),
  );
}

function targetOf(body: Record<string, unknown>): string {
  const target = body["user_id"];
  if (typeof target !== "string") throw missingParam("user_id is required");
  return target;
}

function reasonOf(body: Record<string, unknown>): Record<string, string> {
  return typeof body["reason"] === "string" ? { reason: body["reason"] } : {};
}

/** A room id, or an alias resolved locally or by asking the owning appservice. */
export async function resolveRoom(core: HomeserverCore, idOrAlias: string): Promise<Room> {
  if (idOrAlias.startsWith("#")) {
    const roomId = core.aliases.get(idOrAlias) ?? (await queryAlias(core, idOrAlias));
    if (roomId === undefined) throw notFound(`Room alias ${idOrAlias} not found`);
    return core.room(roomId);
  }
  if (!idOrAlias.startsWith("!"))
    throw invalidParam(`${idOrAlias} is neither a room id nor an alias`);
  return core.room(idOrAlias);
}
