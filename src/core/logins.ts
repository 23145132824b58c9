import type { UsersTable } from "../db/users.js";
import { BridgeError, describeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import {
  isGroupCapable,
  isLoginBatchLoading,
  type LoginField,
  type LoginProcess,
  type LoginStep,
  type NetworkConnector,
  type NetworkDescription,
  type NetworkLogin,
} from "./network.js";
import { securityWarning } from "./texts.js";

interface InputState {
  process: LoginProcess;
  step: Extract<LoginStep, { type: "input" }>;
  /** Values collected for the step so far; fields are asked one at a time. */
  values: Record<string, string>;
  /** Every value submitted in earlier steps (the address, the handle). */
  earlier: Submitted;
}

/** Values submitted so far, and the role of each field that has one (LoginField.role). */
interface Submitted {
  readonly values: Readonly<Record<string, string>>;
  readonly roles: Readonly<Record<string, "address" | "handle">>;
}

const NOTHING_SUBMITTED: Submitted = { values: {}, roles: {} };

/** `earlier` with a step's values added, and the roles its fields declare. */
function withStep(
  earlier: Submitted,
  fields: readonly LoginField[],
  values: Readonly<Record<string, string>>,
): Submitted {
  const roles = { ...earlier.roles };
  for (const field of fields) if (field.role !== undefined) roles[field.id] = field.role;
  return { values: { ...earlier.values, ...values }, roles };
}

/** What one login step came to, for the conversation and the provisioning API alike. */
export type LoginOutcome =
  | { type: "input"; step: Extract<LoginStep, { type: "input" }> }
  | { type: "complete"; instructions: string; /** The identity logged in as. */ id: string }
  /** The network or a check refused the input; `sameStep`: the same step may be submitted again. */
  | { type: "refused"; code: string; message: string; sameStep: boolean }
  /** An internal error ended the login. */
  | { type: "failed" };

/** A stored login that failed to load at start-up (or in its retries). */
export interface LoginLoadFailure {
  /** The last attempt's error, for `status` and the log. */
  error: string;
  attempts: number;
  /** When the next attempt runs (epoch ms). */
  nextAttemptAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** 5 s, doubling, at most 5 min: a passing fault (a database blip) heals soon, a lasting one is not hammered. */
const LOAD_RETRY = { initialMs: 5_000, maxMs: 300_000 };

/**
 * Logins and the login conversation: `login` shows the security warning (state warned), the user
 * picks a flow by replying its id (the warning is then accepted and recorded), each input step's
 * fields are asked one message at a time, and a complete step makes the user logged in. A login in
 * progress lives in memory only: after a restart the user is asked to start again.
 */
export class LoginManager {
  private readonly active = new Map<MatrixUserId, NetworkLogin>();
  /** selfId() → user of the active logins; undefined until asked after a change (userOfSelfId). */
  private selfIds: Map<string, MatrixUserId> | undefined;
  private readonly inProgress = new Map<MatrixUserId, InputState>();
  private readonly failed = new Map<MatrixUserId, LoginLoadFailure>();
  private stopped = false;

  private readonly users: UsersTable;
  private readonly connector: NetworkConnector;
  private readonly log: Logger;
  private readonly retry: { initialMs: number; maxMs: number };
  private readonly onLoginChanged: (user: MatrixUserId) => void;

  constructor(options: {
    users: UsersTable;
    connector: NetworkConnector;
    log: Logger;
    /** Backoff of the retries of a stored login that failed to load (LOAD_RETRY by default). */
    retry?: { initialMs: number; maxMs: number } | undefined;
    /**
     * Called when the user's active login is replaced or removed: what the network reported of the
     * one before (its state) no longer describes the user's login.
     */
    onLoginChanged?: ((user: MatrixUserId) => void) | undefined;
  }) {
    this.users = options.users;
    this.connector = options.connector;
    this.log = options.log;
    this.retry = options.retry ?? LOAD_RETRY;
    this.onLoginChanged = options.onLoginChanged ?? (() => undefined);
  }

  /** The network's self-description, for texts that name it. */
  get network(): NetworkDescription {
    return this.connector.describe();
  }

  get(user: MatrixUserId): NetworkLogin | undefined {
    return this.active.get(user);
  }

  private setActive(user: MatrixUserId, login: NetworkLogin): void {
    this.active.set(user, login);
    this.selfIds = undefined;
    this.onLoginChanged(user);
  }

  private deleteActive(user: MatrixUserId): void {
    this.active.delete(user);
    this.selfIds = undefined;
    this.onLoginChanged(user);
  }

  /**
   * The Matrix user of this bridge whose login is `id` at the network (GroupCapable.selfId), if
   * any: a group message from them was posted in Matrix by that user already.
   */
  userOfSelfId(id: string): MatrixUserId | undefined {
    // Asked for every group message and every member of a reconciled group: an index rebuilt only
    // after the active logins changed, not a scan of every login (10,000 on a large bridge).
    if (this.selfIds === undefined) {
      this.selfIds = new Map();
      for (const [user, login] of this.active)
        if (isGroupCapable(login)) this.selfIds.set(login.selfId(), user);
    }
    return this.selfIds.get(id);
  }

  /**
   * Loads every stored login (start-up): the ids in one query, the logins in one batch where the
   * network can (LoginBatchLoading). A login that fails to load is not fatal and not dropped: it
   * is kept as failed (shown by `status`, `/ready` and the metrics) and retried with backoff
   * until it loads, the user logs out, or the bridge stops.
   */
  async loadAll(): Promise<void> {
    const users = await this.users.loggedInIds();
    if (users.length === 0) return;
    let results: Map<MatrixUserId, NetworkLogin | Error>;
    if (isLoginBatchLoading(this.connector)) {
      try {
        results = await this.connector.loadLogins(users);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        results = new Map(users.map((user) => [user, error]));
      }
    } else {
      results = new Map();
      for (const user of users) {
        results.set(
          user,
          await this.connector
            .loadLogin(user)
            .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
        );
      }
    }
    for (const user of users) {
      const result = results.get(user) ?? new Error("the network returned no login");
      if (result instanceof Error) this.loadFailed(user, result);
      else this.setActive(user, result);
    }
    if (this.failed.size > 0) {
      this.log.warn(
        { failed: this.failed.size, loaded: this.active.size },
        "stored logins did not all load",
      );
    }
  }

  /** A stored login that did not load, and when it is tried again; undefined when none failed. */
  failure(user: MatrixUserId): Readonly<LoginLoadFailure> | undefined {
    return this.failed.get(user);
  }

  /** How many stored logins failed to load and are waiting for their next attempt. */
  failedCount(): number {
    return this.failed.size;
  }

  /** Stops the retries of failed logins (bridge stop). */
  stop(): void {
    this.stopped = true;
    for (const failure of this.failed.values()) clearTimeout(failure.timer);
  }

  private loadFailed(user: MatrixUserId, err: Error): void {
    const previous = this.failed.get(user);
    clearTimeout(previous?.timer);
    const attempts = (previous?.attempts ?? 0) + 1;
    const delay = Math.min(this.retry.initialMs * 2 ** (attempts - 1), this.retry.maxMs);
    const failure: LoginLoadFailure = {
      error: describeError(err),
      attempts,
      nextAttemptAt: Date.now() + delay,
      timer: undefined,
    };
    if (!this.stopped) {
      failure.timer = setTimeout(() => void this.retryLoad(user), delay);
      failure.timer.unref();
    }
    this.failed.set(user, failure);
    this.log.warn(
      { user, attempts, retryInMs: delay, err: failure.error },
      "stored login did not load; trying again later",
    );
  }

  private async retryLoad(user: MatrixUserId): Promise<void> {
    if (this.stopped || !this.failed.has(user)) return;
    try {
      // The user may have logged out or in again meanwhile: then there is nothing to retry.
      const row = await this.users.get(user);
      if (row?.loginState !== "logged-in" || this.active.has(user)) {
        this.clearFailure(user);
        return;
      }
      const login = await this.connector.loadLogin(user);
      if (this.stopped || !this.failed.has(user)) return;
      this.clearFailure(user);
      this.setActive(user, login);
      this.log.info({ user }, "stored login loaded after an earlier failure");
    } catch (err) {
      if (this.stopped || !this.failed.has(user)) return;
      this.loadFailed(user, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private clearFailure(user: MatrixUserId): void {
    clearTimeout(this.failed.get(user)?.timer);
    this.failed.delete(user);
  }

  /** Whether the user's next plain message in the management room answers the login. */
  async isConversing(user: MatrixUserId): Promise<boolean> {
    if (this.inProgress.has(user)) return true;
    const row = await this.users.get(user);
    return row?.loginState === "warned" || row?.loginState === "verifying";
  }

  /**
   * Whether the user has a login the network has not ended. One the network ended (interop: the
   * number was bound elsewhere) may be replaced by a new one directly, from the bot's `login` and
   * from the provisioning API alike (before, the API refused it until a `logout`).
   */
  private hasLiveLogin(user: MatrixUserId): boolean {
    const current = this.active.get(user);
    return current !== undefined && current.state().code !== "logged-out";
  }

  /** `login`: the security warning and the choice of flows. */
  async begin(user: MatrixUserId): Promise<string> {
    if (this.hasLiveLogin(user)) {
      return "You are already logged in. Send `logout` first to switch.";
    }
    if (this.connector.loginFlows().length === 0) {
      return `Logging in is not possible right now: the bridge has no ${this.connector.describe().displayName} connection configured.`;
    }
    await this.dropProcess(user);
    await this.users.ensure(user);
    await this.users.update(user, { loginState: "warned", loginFlow: null });
    return securityWarning(this.connector.describe().securityNotes, this.connector.loginFlows());
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
    return this.advance(user, process, () => process.start(), NOTHING_SUBMITTED);
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
    this.clearFailure(user);
    this.deleteActive(user);
    await this.users.update(user, {
      loginState: "logged-out",
      loginFlow: null,
      address: null,
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
    return this.advance(
      user,
      process,
      () => process.submit(step.stepId, values),
      withStep(state.earlier, step.fields, values),
    );
  }

  private checkField(field: LoginField, value: string): string | undefined {
    if (field.pattern !== undefined && !new RegExp(field.pattern).test(value)) {
      return `That is not a valid ${field.name}. ${field.description}`;
    }
    const description = this.connector.describe();
    if (field.role === "address" && description.identifier.parse(value) === undefined) {
      const { noun, example } = description.identifier;
      return `That is not a valid ${noun}. ${field.description || `For example: ${example}`}`;
    }
    return description.refuseLoginValue?.(field, value);
  }

  private async advance(
    user: MatrixUserId,
    process: LoginProcess,
    call: () => Promise<LoginStep>,
    submitted: Submitted,
  ): Promise<string> {
    const outcome = await this.run(user, process, call, submitted);
    switch (outcome.type) {
      case "refused": {
        const state = this.inProgress.get(user);
        if (!outcome.sameStep || state === undefined) {
          return `${outcome.message} Send \`login\` to start again.`;
        }
        state.values = {};
        return `${outcome.message}\n${prompt(nextField(state) as LoginField)}`;
      }
      case "failed":
        return "The login failed because of an internal error. Send `login` to try again.";
      case "input": {
        const state = this.inProgress.get(user) as InputState;
        const field = nextField(state);
        return field === undefined
          ? outcome.step.instructions
          : `${outcome.step.instructions}\n${prompt(field)}`;
      }
      case "complete":
        return outcome.instructions;
    }
  }

  /**
   * One step of a login, for either channel: calls the process, then records what it means. A
   * BridgeError keeps the process on its step (when one is in progress: the user may correct the
   * value); any other error ends the login. An input step becomes the user's step in progress; a
   * complete step makes the user logged in.
   */
  private async run(
    user: MatrixUserId,
    process: LoginProcess,
    call: () => Promise<LoginStep>,
    submitted: Submitted,
  ): Promise<LoginOutcome> {
    let step: LoginStep;
    try {
      step = await call();
    } catch (err) {
      if (err instanceof BridgeError) {
        if (this.inProgress.get(user)?.process === process) {
          return { type: "refused", code: err.code, message: err.message, sameStep: true };
        }
        await this.users.update(user, { loginState: "logged-out", loginFlow: null });
        return { type: "refused", code: err.code, message: err.message, sameStep: false };
      }
      await this.dropProcess(user);
      await this.users.update(user, { loginState: "logged-out", loginFlow: null });
      this.log.error({ user, err: describeError(err) }, "login step failed");
      return { type: "failed" };
    }
    if (step.type === "input") {
      this.inProgress.set(user, { process, step, values: {}, earlier: submitted });
      return { type: "input", step };
    }
    this.inProgress.delete(user);
    this.clearFailure(user);
    this.setActive(user, step.login);
    const valueOf = (role: "address" | "handle"): string | undefined => {
      const id = Object.keys(submitted.roles).find((field) => submitted.roles[field] === role);
      return id === undefined ? undefined : submitted.values[id];
    };
    const typed = valueOf("address");
    const address =
      typed === undefined ? undefined : this.connector.describe().identifier.parse(typed);
    if (address !== undefined) await this.users.releaseAddress(address, user);
    const handle = valueOf("handle") ?? null;
    await this.users.update(user, {
      loginState: "logged-in",
      loginFlow: null,
      address: address ?? null,
      handle,
    });
    this.log.info({ user }, "logged in");
    return { type: "complete", instructions: step.instructions, id: typed ?? handle ?? user };
  }

  // The structured path (provisioning API): the same processes, checks and bookkeeping as the
  // conversation, with every field of a step submitted at once.

  /**
   * Starts a login with a flow for a user who has none. The caller has shown the security
   * warning (`securityWarningText`); starting records it as accepted, as replying a flow id does.
   * A login in progress in either channel is cancelled first: a user has one at a time.
   */
  async startStructured(
    user: MatrixUserId,
    flowId: string,
  ): Promise<{ process: LoginProcess; outcome: LoginOutcome }> {
    if (this.hasLiveLogin(user)) {
      throw new BridgeError("already-logged-in", "You are already logged in; log out first.");
    }
    if (!this.connector.loginFlows().some((f) => f.id === flowId)) {
      throw new BridgeError("login-flow-unknown", `There is no login flow "${flowId}".`);
    }
    await this.dropProcess(user);
    await this.users.ensure(user);
    const process = this.connector.createLogin(user, flowId);
    await this.users.update(user, {
      loginState: "verifying",
      loginFlow: flowId,
      warningAcceptedAt: Date.now(),
    });
    return {
      process,
      outcome: await this.run(user, process, () => process.start(), NOTHING_SUBMITTED),
    };
  }

  /** The input step `process` waits on, if it is still the user's login in progress. */
  stepOf(
    user: MatrixUserId,
    process: LoginProcess,
  ): Extract<LoginStep, { type: "input" }> | undefined {
    const state = this.inProgress.get(user);
    return state?.process === process ? state.step : undefined;
  }

  /**
   * Submits every field of the current step at once. Each value is checked as in the
   * conversation (pattern, international format, allowed country codes) before the network is
   * asked; a missing or invalid one is refused with the step kept.
   */
  async submitStructured(
    user: MatrixUserId,
    process: LoginProcess,
    stepId: string,
    input: Readonly<Record<string, string>>,
  ): Promise<LoginOutcome> {
    const state = this.inProgress.get(user);
    if (state?.process !== process || state.step.stepId !== stepId) {
      throw new BridgeError("login-step-stale", "This login step is no longer in progress.");
    }
    const values: Record<string, string> = {};
    for (const field of state.step.fields) {
      const value = input[field.id]?.trim();
      if (value === undefined || value === "") {
        return {
          type: "refused",
          code: "field-missing",
          message: `${field.name} is missing.`,
          sameStep: true,
        };
      }
      const problem = this.checkField(field, value);
      if (problem !== undefined) {
        return { type: "refused", code: "field-invalid", message: problem, sameStep: true };
      }
      values[field.id] = value;
    }
    return this.run(
      user,
      process,
      () => process.submit(stepId, values),
      withStep(state.earlier, state.step.fields, values),
    );
  }

  /** Cancels `process` if it is still the user's login in progress. */
  async cancelStructured(user: MatrixUserId, process: LoginProcess): Promise<void> {
    if (this.inProgress.get(user)?.process !== process) return;
    await this.dropProcess(user);
    await this.users.update(user, { loginState: "logged-out", loginFlow: null });
  }

  /** The warning a client shows before it starts a login (what `login` shows in the chat). */
  securityWarningText(): string {
    return securityWarning(this.connector.describe().securityNotes, this.connector.loginFlows());
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
