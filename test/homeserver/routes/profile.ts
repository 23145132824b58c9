import { queryUser } from "../appservice/queries.js";
import { assertSelf } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { invalidParam, notFound } from "../errors.js";
import { setMembership } from "../roomOps.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";
import type { UserRecord } from "../store/users.js";

/** Profiles (displayname, avatar_url) and the user directory. */
export function registerProfileRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  const lookup = async (userId: string): Promise<UserRecord> => {
    let user = core.users.get(userId);
    if (user === undefined && (await queryUser(core, userId))) user = core.users.get(userId);
    if (user === undefined) throw notFound(`Profile of ${userId} not found`);
    return user;
  };

  // Profile reads need no authentication (spec, unless the server requires it).
  ctx.client("GET", "/profile/:userId", async (req) => {
    const user = await lookup(param(req, "userId"));
    const body: Record<string, string> = {};
    if (user.displayname !== null) body["displayname"] = user.displayname;
    if (user.avatarUrl !== null) body["avatar_url"] = user.avatarUrl;
    return ok(body);
  });
  ctx.client("GET", "/profile/:userId/displayname", async (req) => {
    const user = await lookup(param(req, "userId"));
    if (user.displayname === null) throw notFound("No display name set");
    return ok({ displayname: user.displayname });
  });
  ctx.client("GET", "/profile/:userId/avatar_url", async (req) => {
    const user = await lookup(param(req, "userId"));
    if (user.avatarUrl === null) throw notFound("No avatar set");
    return ok({ avatar_url: user.avatarUrl });
  });

  ctx.authed("PUT", "/profile/:userId/displayname", (req, who) => {
    assertSelf(who, param(req, "userId"), "set a display name");
    const value = jsonBody(req)["displayname"];
    if (value !== undefined && value !== null && typeof value !== "string")
      throw invalidParam("displayname must be a string");
    updateProfile(core, who.userId, { displayname: typeof value === "string" ? value : null });
    return ok({});
  });
  ctx.authed("PUT", "/profile/:userId/avatar_url", (req, who) => {
    assertSelf(who, param(req, "userId"), "set an avatar");
    const value = jsonBody(req)["avatar_url"];
    if (value !== undefined && value !== null && typeof value !== "string")
      throw invalidParam("avatar_url must be a string");
    updateProfile(core, who.userId, { avatarUrl: typeof value === "string" ? value : null });
    return ok({});
  });

  ctx.authed("POST", "/user_directory/search", (req) => {
    const body = jsonBody(req);
    const term = typeof body["search_term"] === "string" ? body["search_term"] : "";
    const limit = typeof body["limit"] === "number" ? body["limit"] : 10;
    const found = core.users.search(term, limit + 1);
    return ok({
      limited: found.length > limit,
      results: found
        .slice(0, limit)
        .map((u) => ({ user_id: u.userId, display_name: u.displayname, avatar_url: u.avatarUrl })),
    });
  });
}

/** Synapse re-sends the member event in every joined room when a profile changes. */
function updateProfile(
  core: HomeserverCore,
  userId: string,
  change: Partial<Pick<UserRecord, "displayname" | "avatarUrl">>,
): void {
  const user = core.users.get(userId);
  if (user === undefined) throw notFound(`Unknown user ${userId}`);
  Object.assign(user, change);
  for (const room of core.roomsWithMembership(userId, "join")) {
    const current = room.getState("m.room.member", userId)?.content ?? {};
    const content = { ...current };
    delete content["membership"];
    if (user.displayname === null) delete content["displayname"];
    else content["displayname"] = user.displayname;
    if (user.avatarUrl === null) delete content["avatar_url"];
    else content["avatar_url"] = user.avatarUrl;
    setMembership(core, room, userId, userId, "join", content);
  }
}
