import type { Requester } from "../auth.js";
import type { HomeserverCore } from "../core.js";
import { MatrixError } from "../errors.js";
import { isObject, newOpaqueId } from "../events.js";
import type { JsonObject } from "../types.js";

/**
 * User-interactive authentication with one `m.login.password` stage (client-server "User-Interactive
 * Authentication API"), as a Synapse without SSO offers for device deletion and cross-signing key
 * replacement. Throws the spec's 401 with the flows until `body.auth` proves the password.
 * An appservice acting for its user passes when its registration enables MSC4190 (appservice
 * device management, `io.element.msc4190: true`), as Synapse allows since 1.120.
 */
export function requireUserInteractiveAuth(
  core: HomeserverCore,
  who: Requester,
  body: JsonObject,
): void {
  if (who.appservice?.registration["io.element.msc4190"] === true) return;
  const auth = body["auth"];
  const challenge: JsonObject = {
    flows: [{ stages: ["m.login.password"] }],
    params: {},
    session:
      isObject(auth) && typeof auth["session"] === "string" ? auth["session"] : newOpaqueId(),
  };
  if (!isObject(auth))
    throw new MatrixError(401, "M_UNAUTHORIZED", "Authentication needed", challenge);
  if (auth["type"] !== "m.login.password") {
    throw new MatrixError(
      401,
      "M_UNAUTHORIZED",
      `Unsupported stage ${String(auth["type"])}`,
      challenge,
    );
  }
  const identifier = auth["identifier"];
  const user = isObject(identifier) ? identifier["user"] : auth["user"];
  const userId =
    typeof user === "string"
      ? user.startsWith("@")
        ? user
        : core.users.userIdFor(user)
      : who.userId;
  const password = auth["password"];
  if (
    userId !== who.userId ||
    typeof password !== "string" ||
    !core.users.checkPassword(userId, password)
  ) {
    throw new MatrixError(401, "M_FORBIDDEN", "Invalid password", { ...challenge, completed: [] });
  }
}
