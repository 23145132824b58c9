import { pingAppservice } from "../appservice/queries.js";
import { accessTokenOf } from "../auth.js";
import { MatrixError, forbidden, missingToken, unknownToken } from "../errors.js";
import { handleSync } from "../sync.js";
import { jsonBody, ok, param } from "../router.js";
import type { RouteContext } from "../server.js";

/** The appservice ping (absent on Synapse 1.67, HOMESERVERS.md) and `/sync`. */
export function registerAppserviceAndSyncRoutes(ctx: RouteContext): void {
  const core = ctx.core;
  ctx.authed("GET", "/sync", async (req, who) => ok(await handleSync(core, req, who)));

  if (core.profile === "synapse-1.67") return;
  ctx.client(
    "POST",
    "/appservice/:appserviceId/ping",
    async (req) => {
      const token = accessTokenOf(req);
      if (token === undefined) throw missingToken();
      const as = core.appservices.byToken(token);
      if (as === undefined && core.users.session(token) === undefined)
        throw unknownToken("Unknown access token");
      if (as === undefined || as.id !== param(req, "appserviceId")) {
        throw forbidden("The access token does not belong to this application service");
      }
      if (!as.registration.url)
        throw new MatrixError(400, "M_URL_NOT_SET", "The appservice has no URL");
      const txnId = jsonBody(req)["transaction_id"];
      const duration = await pingAppservice(
        core,
        as.registration.url,
        as.registration.hs_token,
        typeof txnId === "string" ? txnId : undefined,
      );
      return ok({ duration_ms: duration });
    },
    ["v1"],
  );
}
