import { queryAlias } from "../appservice/queries.js";
import { forbidden, missingParam, notFound } from "../errors.js";
import { addAlias, assertMayCreateAlias } from "../roomOps.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";

/** Room aliases and the public room list. */
export function registerDirectoryRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.client("GET", "/directory/room/:alias", async (req) => {
    const alias = param(req, "alias");
    const roomId = core.aliases.get(alias) ?? (await queryAlias(core, alias));
    if (roomId === undefined) throw notFound(`Room alias ${alias} not found`);
    return ok({ room_id: roomId, servers: [core.serverName] });
  });
  ctx.authed("PUT", "/directory/room/:alias", (req, who) => {
    const alias = param(req, "alias");
    const roomId = jsonBody(req)["room_id"];
    if (typeof roomId !== "string") throw missingParam("room_id is required");
    const room = core.room(roomId);
    if (core.aliases.has(alias)) {
      return {
        status: 409,
        json: { errcode: "M_UNKNOWN", error: `Room alias ${alias} already exists` },
      };
    }
    assertMayCreateAlias(core, who, alias);
    addAlias(core, alias, room, who.userId);
    return ok({});
  });
  ctx.authed("DELETE", "/directory/room/:alias", (req, who) => {
    const alias = param(req, "alias");
    const roomId = core.aliases.get(alias);
    if (roomId === undefined) throw notFound(`Room alias ${alias} not found`);
    const mayDelete =
      core.aliasCreators.get(alias) === who.userId || who.appservice?.ownsAlias(alias) === true;
    if (!mayDelete) throw forbidden(`${who.userId} may not delete ${alias}`);
    core.aliases.delete(alias);
    core.aliasCreators.delete(alias);
    core.rooms.get(roomId)?.aliases.delete(alias);
    return ok({});
  });
  ctx.authed("GET", "/rooms/:roomId/aliases", (req) => {
    const room = core.room(param(req, "roomId"));
    return ok({ aliases: [...room.aliases] });
  });

  ctx.client("GET", "/publicRooms", () => {
    const chunk = [...core.publishedRooms].map((roomId) => {
      const room = core.room(roomId);
      const name = room.getState("m.room.name")?.content["name"];
      const topic = room.getState("m.room.topic")?.content["topic"];
      return {
        room_id: roomId,
        num_joined_members: room.members("join").length,
        world_readable: false,
        guest_can_join: false,
        join_rule: room.joinRule(),
        ...(typeof name === "string" ? { name } : {}),
        ...(typeof topic === "string" ? { topic } : {}),
      };
    });
    return ok({ chunk, total_room_count_estimate: chunk.length });
  });
}
