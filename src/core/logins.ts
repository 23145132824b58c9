import type { Config } from "../config/schema.js";
import type { UsersTable } from "../db/users.js";
import { BridgeError, describeError } from "../util/errors.js";
import { isPhoneNumber, type MatrixUserId, type PhoneNumber } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type {
  LoginField,
  LoginProcess,
  LoginStep,
  NetworkConnector,
  NetworkLogin,
} from "./network.js";
import { isAllowedCountry } from "./phone-format.js";
import { securityWarning } from "./texts.js";

interface InputState {
  process: LoginProcess;
  step: Extract<LoginStep, { type: "input" }>;
  /** Values collected for the step so far; fields are asked one at a time. */
  values: Record<string, string>;
  /** Every value submitted in earlier steps (the phone number, the handle). */
  earlier: Record<string, string>;
}

/**
 * Logins and the login conversation: `login` shows the security warning (state warned), the user
 * picks a flow by replying its id (the warning is then accepted and recorded), each input step's
 * fields are asked one message at a time, and a complete step makes the user logged in. A login in
 * progress lives in memory only: after a restart the user is asked to start again.
 */
export class LoginManager {
  private readonly active = new Map<MatrixUserId, NetworkLogin>();
  private readonly inProgress = new Map<MatrixUserId, InputState>();

  constructor(
    private readonly config: Config,
    private readonly users: UsersTable,
    private readonly connector: NetworkConnector,
    private readonly log: Logger,
  ) {}

  get(user: MatrixUserId): NetworkLogin | undefined {
    return this.active.get(user);
  }

  /** Loads every stored login (start-up). A login that fails to load is logged, not fatal. */
  async loadAll(): Promise<void> {
    for (const row of await this.users.loggedIn()) {
      try {
        this.active.set(row.mxid, await this.connector.loadLogin(row.mxid));
      } catch (err) {
        this.log.warn({ user: row.mxid, err: describeError(err) }, "stored login did not load");
      }
    }
  }

  /** Whether the user's next plain message in the management room answers the login. */
  async isConversing(user: MatrixUserId): Promise<boolean> {
    if (this.inProgress.has(user)) return true;
    const row = await this.users.get(user);
    return row?.loginState === "warned" || row?.loginState === "verifying";
  }

  /** `login`: the security warning and the choice of flows. */
  async begin(user: MatrixUserId): Promise<string> {
    if (this.active.has(user)) return "You are already logged in. Send `logout` first to switch.";
    if (this.connector.loginFlows().length === 0) {
      return "Logging in is not possible right now: the bridge has no WhatsApp connection configured.";
    }
    await this.dropProcess(user);
    await this.users.ensure(user);
    await this.users.update(user, { loginState: "warned", loginFlow: null });
    return securityWarning(this.config.interop.provider_id, this.connector.loginFlows());
  }

  async cancel(user: MatrixUserId): Promise<string> {
    const row = await this.users.get(user);
    if (row === undefined || (row.loginState !== "warned" && row.loginState !== "verifying")) {
      return "No login is in progress.";
    }
    await this.dropProcess(user);
    await this.users.update(user, { loginState: "logged-out", loginFlow: null });
    return "Login cancelled.";
  }

  /** A plain message while conversing: a flow choice, or the value of the field asked for. */
  async answer(user: MatrixUserId, text: string): Promise<string> {
    const value = text.trim();
    if (value.toLowerCase() === "cancel") return this.cancel(user);
    const state = this.inProgress.get(user);
    if (state !== undefined) return this.collect(user, state, value);
    const row = await this.users.get(user);
    if (row?.loginState === "verifying") {
      await this.users.update(user, { loginState: "logged-out", loginFlow: null });
      return "The login in progress was interrupted (the bridge restarted). Send `login` to start again.";
    }
    const flow = this.connector.loginFlows().find((f) => f.id === value.toLowerCase());
    if (flow === undefined) {
      const ids = this.connector.loginFlows().map((f) => `\`${f.id}\``);
      return `Reply ${ids.join(" or ")} to continue, or \`cancel\`.`;
    }
    const process = this.connector.createLogin(user, flow.id);
    await this.users.update(user, {
      loginState: "verifying",
      loginFlow: flow.id,
      warningAcceptedAt: Date.now(),
    });
    return this.advance(user, process, () => process.start(), {});
  }

  /**
   * `logout`: tells the network, which deletes the login's keys; the caller cleans up portals.
   * A stored login that could not be loaded at start-up is loaded once more for this; if that
   * fails too, the user is logged out here only ("local-only") and told so.
   */
  async logout(user: MatrixUserId): Promise<"done" | "local-only" | "not-logged-in"> {
    await this.dropProcess(user);
    let login = this.active.get(user);
    if (login === undefined) {
      const row = await this.users.get(user);
      if (row?.loginState !== "logged-in") return "not-logged-in";
      login = await this.connector.loadLogin(user).catch((err: unknown) => {
        this.log.warn({ user, err: describeError(err) }, "login to log out did not load");
        return undefined;
      });
    }
    if (login !== undefined) await login.logout();
    this.active.delete(user);
    await this.users.update(user, {
      loginState: "logged-out",
      loginFlow: null,
      phone: null,
      handle: null,
    });
    return login === undefined ? "local-only" : "done";
  }

  count(): number {
    return this.active.size;
  }

  private async collect(user: MatrixUserId, state: InputState, value: string): Promise<string> {
    const field = nextField(state);
    if (field === undefined) return "Please wait, the previous step is still being processed.";
    const problem = this.checkField(field, value);
    if (problem !== undefined) return problem;
    const values = { ...state.values, [field.id]: value };
    if (nextField({ ...state, values }) !== undefined) {
      state.values = values;
      return prompt(nextField({ ...state, values }) as LoginField);
    }
    const { process, step } = state;
    return this.advance(user, process, () => process.submit(step.stepId, values), {
      ...state.earlier,
      ...values,
    });
  }

  private checkField(field: LoginField, value: string): string | undefined {
    if (field.pattern !== undefined && !new RegExp(field.pattern).test(value)) {
      return `That is not a valid ${field.name}. ${field.description}`;
    }
    if (field.id === "phone") {
      if (!isPhoneNumber(value)) {
        return "Please send the number in international format, e.g. +491701234567.";
      }
      if (!isAllowedCountry(value, this.config.interop.allowed_country_codes)) {
        return (
          `Numbers from ${value.slice(0, 4)}… cannot log in here: WhatsApp admits third-party ` +
          "chat users in the European Economic Area only, and this bridge allows the country " +
          `codes ${this.config.interop.allowed_country_codes.map((c) => `+${c}`).join(", ")}.`
        );
      }
    }
    return undefined;
  }

  private async advance(
    user: MatrixUserId,
    process: LoginProcess,
    call: () => Promise<LoginStep>,
    submitted: Record<string, string>,
  ): Promise<string> {
    let step: LoginStep;
    try {
      step = await call();
    } catch (err) {
      if (err instanceof BridgeError) {
        // The process stays on the same step: the user may correct the value and try again.
        const state = this.inProgress.get(user);
        if (state === undefined) {
          await this.users.update(user, { loginState: "logged-out", loginFlow: null });
          return `${err.message} Send \`login\` to start again.`;
        }
        state.values = {};
        return `${err.message}\n${prompt(nextField(state) as LoginField)}`;
      }
      await this.dropProcess(user);
      await this.users.update(user, { loginState: "logged-out", loginFlow: null });
      this.log.error({ user, err: describeError(err) }, "login step failed");
      return "The login failed because of an internal error. Send `login` to try again.";
    }
    if (step.type === "input") {
      const state: InputState = { process, step, values: {}, earlier: submitted };
      this.inProgress.set(user, state);
      const field = nextField(state);
      return field === undefined ? step.instructions : `${step.instructions}\n${prompt(field)}`;
    }
    this.inProgress.delete(user);
    this.active.set(user, step.login);
    const phone = submitted["phone"];
    if (phone !== undefined && isPhoneNumber(phone)) {
      await this.users.releasePhone(phone, user);
    }
    await this.users.update(user, {
      loginState: "logged-in",
      loginFlow: null,
      phone: phone !== undefined && isPhoneNumber(phone) ? (phone as PhoneNumber) : null,
      handle: submitted["handle"] ?? submitted["username"] ?? null,
    });
    this.log.info({ user }, "logged in");
    return step.instructions;
  }

  private async dropProcess(user: MatrixUserId): Promise<void> {
    const state = this.inProgress.get(user);
    this.inProgress.delete(user);
    await state?.process.cancel().catch((err: unknown) => {
      this.log.warn({ user, err: describeError(err) }, "cancelling a login failed");
    });
  }
}

function nextField(state: InputState): LoginField | undefined {
  return state.step.fields.find((f) => !(f.id in state.values));
}

function prompt(field: LoginField): string {
  return `Send your ${field.name}: ${field.description}`;
}
