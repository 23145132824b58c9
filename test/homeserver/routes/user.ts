import { assertSelf } from "../auth.js";
import { notFound } from "../errors.js";
import { defaultPushRules } from "../pushRules.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";

/** Account data, filters, presence, push rules and the TURN answer. */
export function registerUserRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.authed("POST", "/user/:userId/filter", (req, who) => {
    assertSelf(who, param(req, "userId"), "create a filter");
    return ok({ filter_id: core.accountData.saveFilter(who.userId, jsonBody(req)) });
  });
  ctx.authed("GET", "/user/:userId/filter/:filterId", (req, who) => {
    assertSelf(who, param(req, "userId"), "read a filter");
    const filter = core.accountData.filter(who.userId, param(req, "filterId"));
    if (filter === undefined) throw notFound("No such filter");
    return ok(filter);
  });

  ctx.authed("GET", "/user/:userId/account_data/:type", (req, who) => {
    assertSelf(who, param(req, "userId"), "read account data");
    const content = core.accountData.get(who.userId, param(req, "type"));
    if (content === undefined) throw notFound("Account data not found");
    return ok(content);
  });
  ctx.authed("PUT", "/user/:userId/account_data/:type", (req, who) => {
    assertSelf(who, param(req, "userId"), "set account data");
    core.accountData.set(who.userId, param(req, "type"), jsonBody(req), core.stream.current + 1);
    core.stream.advance();
    return ok({});
  });
  ctx.authed("GET", "/user/:userId/rooms/:roomId/account_data/:type", (req, who) => {
    assertSelf(who, param(req, "userId"), "read account data");
    const content = core.accountData.getForRoom(
      who.userId,
      param(req, "roomId"),
      param(req, "type"),
    );
    if (content === undefined) throw notFound("Account data not found");
    return ok(content);
  });
  ctx.authed("PUT", "/user/:userId/rooms/:roomId/account_data/:type", (req, who) => {
    assertSelf(who, param(req, "userId"), "set account data");
    const roomId = param(req, "roomId");
    core.accountData.setForRoom(
      who.userId,
      roomId,
      param(req, "type"),
      jsonBody(req),
      core.stream.current + 1,
    );
    core.stream.advance();
    return ok({});
  });

  ctx.authed("GET", "/pushrules", (_req, who) => ok({ global: defaultPushRules(who.userId) }));
  ctx.authed("GET", "/pushrules/global", (_req, who) => ok(defaultPushRules(who.userId)));

  ctx.authed("GET", "/presence/:userId/status", (req) => {
    const user = core.users.get(param(req, "userId"));
    if (user === undefined) throw notFound("Unknown user");
    const body: Record<string, unknown> = {
      presence: user.presence.presence,
      last_active_ago: Date.now() - user.presence.lastActive,
    };
    if (user.presence.statusMsg !== undefined) body["status_msg"] = user.presence.statusMsg;
    return ok(body);
  });
  ctx.authed("PUT", "/presence/:userId/status", (req, who) => {
    assertSelf(who, param(req, "userId"), "set presence");
    const body = jsonBody(req);
    const user = core.users.get(who.userId);
    if (user !== undefined && typeof body["presence"] === "string") {
      user.presence = { presence: body["presence"], lastActive: Date.now() };
      if (typeof body["status_msg"] === "string") user.presence.statusMsg = body["status_msg"];
    }
    return ok({});
  });

  // No TURN server is configured; Synapse answers an empty object then.
  ctx.authed("GET", "/voip/turnServer", () => ok({}));
}
