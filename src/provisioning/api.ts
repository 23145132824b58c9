import { randomBytes } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { LoginOutcome } from "../core/logins.js";
import type { LoginProcess } from "../core/network.js";
import type { ProvisioningPort } from "../core/ports.js";
import { describeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { ProvisioningAuth } from "./auth.js";
import { ProvisioningError, sendError } from "./errors.js";
import {
  asRefusal,
  bridgeState,
  cors,
  fieldJson,
  identifierUri,
  loginIdOf,
  notReachable,
  parseIdentifier,
  stringRecord,
} from "./shapes.js";

type App = {
  get(path: string, handler: (req: Request, res: Response) => void): unknown;
  post(path: string, handler: (req: Request, res: Response) => void): unknown;
  options(path: string, handler: (req: Request, res: Response) => void): unknown;
  use(path: string, handler: (...args: never[]) => void): unknown;
};

/** A login in progress started through the API, addressed by its random id. */
interface ApiLogin {
  user: MatrixUserId;
  process: LoginProcess;
  startedAt: number;
}

/** A login started through the API and left alone is forgotten after this long. */
const LOGIN_TTL_MS = 30 * 60_000;

/**
 * The provisioning API (docs/provisioning.md, docs/provisioning.yaml), mounted on the appservice
 * listener under `prefix`, in the shape of mautrix bridgev2's /_matrix/provision/v3: whoami,
 * login flows, login start and steps, logout, logins, resolve_identifier and create_dm. Logins go
 * through the core's LoginManager, the same processes and checks as the bot's `login`.
 */
export class ProvisioningApi {
  private readonly logins = new Map<string, ApiLogin>();

  constructor(
    private readonly core: ProvisioningPort,
    private readonly auth: ProvisioningAuth,
    private readonly log: Logger,
  ) {}

  mount(app: App, prefix: string): void {
    const v3 = `${prefix}/v3`;
    app.options(`${prefix}/*`, (_req, res) => {
      cors(res);
      res.status(200).end();
    });
    const route = (
      method: "get" | "post",
      path: string,
      handler: (user: MatrixUserId, req: Request) => Promise<{ status?: number; body: unknown }>,
    ) => {
      app[method](`${v3}${path}`, (req, res) => void this.handle(req, res, handler));
    };
    route("get", "/whoami", (user) => this.whoami(user));
    route("get", "/login/flows", async () => ({
      body: {
        flows: this.core.loginFlows(),
        // mautrix clients ignore it; ours show it before starting (the bot shows it in the chat).
        security_warning: this.core.logins.securityWarningText(),
      },
    }));
    route("post", "/login/start/:flowId", (user, req) =>
      this.loginStart(user, String(req.params["flowId"])),
    );
    route("post", "/login/step/:loginId/:stepId/:stepType", (user, req) =>
      this.loginStep(user, req),
    );
    route("post", "/logout/:loginId", (user, req) =>
      this.logout(user, String(req.params["loginId"])),
    );
    route("get", "/logins", async (user) => ({ body: { login_ids: await this.loginIds(user) } }));
    route("get", "/resolve_identifier/:identifier", (user, req) =>
      this.resolve(user, String(req.params["identifier"]), false),
    );
    route("post", "/create_dm/:identifier", (user, req) =>
      this.resolve(user, String(req.params["identifier"]), true),
    );
    // bridgev2 names the route create_group/{type}; this bridge has one kind of group.
    route("post", "/create_group", (user, req) => this.createGroup(user, req.body));
    route("post", "/create_group/:type", (user, req) => this.createGroup(user, req.body));
    // Anything else under the prefix: a JSON 404, and malformed JSON bodies as M_NOT_JSON (the
    // listener's body parser runs before these routes and hands its error on).
    app.use(prefix, (_req: Request, res: Response) => {
      cors(res);
      sendError(res, 404, "M_UNRECOGNIZED", "Unrecognized request");
    });
    app.use(prefix, (err: unknown, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) return next(err);
      cors(res);
      const status = (err as { status?: unknown }).status;
      if (status === 400) return sendError(res, 400, "M_NOT_JSON", "The body is not valid JSON");
      if (status === 413) return sendError(res, 413, "M_TOO_LARGE", "Body too large");
      this.log.error({ err: describeError(err) }, "provisioning request failed");
      sendError(res, 500, "M_UNKNOWN", "Internal error");
    });
  }

  private async handle(
    req: Request,
    res: Response,
    handler: (user: MatrixUserId, req: Request) => Promise<{ status?: number; body: unknown }>,
  ): Promise<void> {
    cors(res);
    try {
      const { user } = await this.auth.authenticate(
        req.headers.authorization,
        req.query["user_id"],
      );
      if (this.core.permissionOf(user) === "none") {
        throw new ProvisioningError(403, "M_FORBIDDEN", "You may not use this bridge");
      }
      const { status, body } = await handler(user, req);
      res.status(status ?? 200).json(body);
    } catch (err) {
      const refusal = asRefusal(err);
      if (refusal.status >= 500) {
        this.log.warn({ path: req.path, err: describeError(err) }, "provisioning request failed");
      } else {
        this.log.debug(
          { path: req.path, errcode: refusal.errcode },
          "provisioning request refused",
        );
      }
      sendError(res, refusal.status, refusal.errcode, refusal.message, refusal.extra);
    }
  }

  private async whoami(user: MatrixUserId) {
    const row = await this.core.users.get(user);
    const login = this.core.logins.get(user);
    const logins =
      login === undefined || row === undefined
        ? []
        : [
            {
              id: loginIdOf(row, user),
              name:
                row.address === null
                  ? (row.handle ?? "")
                  : this.core.network.identifier.format(row.address),
              state: bridgeState(this.core.loginStateOf(user) ?? login.state()),
              ...(row.spaceRoom === null ? {} : { space_room: row.spaceRoom }),
            },
          ];
    return {
      body: {
        network: {
          displayname: this.core.network.displayName,
          network_url: "https://www.whatsapp.com",
          network_id: "whatsapp-interop",
        },
        login_flows: this.core.loginFlows(),
        homeserver: this.core.homeserverDomain,
        bridge_bot: this.core.botUserId,
        command_prefix: this.core.network.commandPrefix,
        ...(row === undefined || row.managementRoom === null
          ? {}
          : { management_room: row.managementRoom }),
        logins,
      },
    };
  }

  private async loginStart(user: MatrixUserId, flowId: string) {
    this.forgetStale();
    const { process, outcome } = await this.core.logins.startStructured(user, flowId);
    const id = randomBytes(16).toString("hex");
    this.logins.set(id, { user, process, startedAt: Date.now() });
    return this.answer(id, outcome);
  }

  private async loginStep(user: MatrixUserId, req: Request) {
    const id = String(req.params["loginId"]);
    const login = this.logins.get(id);
    if (login === undefined || login.user !== user) {
      throw new ProvisioningError(404, "M_NOT_FOUND", "Login not found");
    }
    const step = this.core.logins.stepOf(user, login.process);
    if (step === undefined) {
      this.logins.delete(id);
      throw new ProvisioningError(404, "M_NOT_FOUND", "Login not found (it ended or was replaced)");
    }
    if (step.stepId !== req.params["stepId"] || req.params["stepType"] !== "user_input") {
      throw new ProvisioningError(400, "M_BAD_STATE", "Step ID or type does not match", {
        step_id: step.stepId,
      });
    }
    const input = stringRecord(req.body);
    const outcome = await this.core.logins.submitStructured(
      user,
      login.process,
      step.stepId,
      input,
    );
    return this.answer(id, outcome);
  }

  private answer(id: string, outcome: LoginOutcome): { status?: number; body: unknown } {
    switch (outcome.type) {
      case "input":
        return {
          body: {
            login_id: id,
            type: "user_input",
            step_id: outcome.step.stepId,
            instructions: outcome.step.instructions,
            user_input: {
              fields: outcome.step.fields.map((f) => fieldJson(f, this.core.network.identifier)),
            },
          },
        };
      case "complete":
        this.logins.delete(id);
        return {
          body: {
            login_id: id,
            type: "complete",
            step_id: "complete",
            instructions: outcome.instructions,
            complete: { user_login_id: outcome.id },
          },
        };
      case "refused":
        if (!outcome.sameStep) this.logins.delete(id);
        throw new ProvisioningError(400, "M_INVALID_PARAM", outcome.message, {
          login_id: id,
          retry_step: outcome.sameStep,
          reason: outcome.code,
        });
      case "failed":
        this.logins.delete(id);
        throw new ProvisioningError(
          500,
          "M_UNKNOWN",
          "The login failed because of an internal error",
        );
    }
  }

  private async logout(user: MatrixUserId, loginId: string) {
    const ids = await this.loginIds(user);
    if (loginId !== "all" && !ids.includes(loginId)) {
      throw new ProvisioningError(404, "M_NOT_FOUND", "Login not found");
    }
    if (ids.length > 0) await this.core.logoutUser(user, { leavePortals: true });
    return { body: {} };
  }

  private async loginIds(user: MatrixUserId): Promise<string[]> {
    const row = await this.core.users.get(user);
    return row?.loginState === "logged-in" ? [loginIdOf(row, user)] : [];
  }

  /** resolve_identifier and create_dm: an address's reachability, and its chat. */
  private async resolve(user: MatrixUserId, identifier: string, create: boolean) {
    const kind = this.core.network.identifier;
    const address = parseIdentifier(identifier, kind);
    const login = this.core.logins.get(user);
    if (login === undefined) {
      throw new ProvisioningError(400, "FI.MAU.NOT_LOGGED_IN", "Not logged in");
    }
    const mxid = this.core.ghosts.mxidFor(address);
    const base = {
      name: kind.format(address),
      identifiers: [identifierUri(address, kind)],
      mxid,
    };
    if (create) {
      const result = await this.core.openChat(user, address);
      if (!result.reachable) throw notReachable();
      const { open } = result;
      return {
        status: open.created ? 201 : 200,
        body: { id: open.portal.contact, ...base, dm_room_mxid: open.portal.roomId },
      };
    }
    const resolution = await login.resolveAddress(address);
    if (!resolution.reachable) throw notReachable();
    const portal = await this.core.portalRows.get(user, resolution.contact);
    return {
      body: {
        id: resolution.contact,
        ...base,
        ...(portal === undefined || portal.roomId === null ? {} : { dm_room_mxid: portal.roomId }),
      },
    };
  }

  /**
   * create_group: `{"name": "...", "participants": ["+49...", ...]}` (name may also be bridgev2's
   * `{"name": {"name": "..."}}`). Answers 201 with the group's id, its room (`mxid`) and the
   * numbers the network would not add.
   */
  private async createGroup(user: MatrixUserId, body: unknown) {
    const record =
      typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
    const rawName = record["name"];
    const name =
      typeof rawName === "string"
        ? rawName
        : typeof rawName === "object" && rawName !== null
          ? (rawName as Record<string, unknown>)["name"]
          : undefined;
    const participants = record["participants"];
    if (typeof name !== "string" || name.trim() === "") {
      throw new ProvisioningError(400, "M_MISSING_PARAM", "The group needs a name");
    }
    if (!Array.isArray(participants) || participants.length === 0) {
      throw new ProvisioningError(400, "M_MISSING_PARAM", "The group needs participants");
    }
    const members = participants.map((p) =>
      parseIdentifier(String(p), this.core.network.identifier),
    );
    if (this.core.logins.get(user) === undefined) {
      throw new ProvisioningError(400, "FI.MAU.NOT_LOGGED_IN", "Not logged in");
    }
    const created = await this.core.createGroup(user, name.trim(), members);
    return {
      status: 201,
      body: { id: created.group, mxid: created.room, rejected: created.rejected },
    };
  }

  private forgetStale(): void {
    const cutoff = Date.now() - LOGIN_TTL_MS;
    for (const [id, login] of this.logins) {
      if (
        login.startedAt < cutoff ||
        this.core.logins.stepOf(login.user, login.process) === undefined
      ) {
        this.logins.delete(id);
      }
    }
  }
}
