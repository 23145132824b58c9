import type { LoginProcess, LoginStep } from "../../core/network.js";
import { BridgeError } from "../../util/errors.js";
import { noticeTime } from "../../util/notice-time.js";
import { formatInternational } from "../../util/phone.js";
import {
  isPhoneNumber,
  type BareJid,
  type MatrixUserId,
  type PhoneNumber,
} from "../../util/ids.js";
import { GatekeeperError, ProviderError } from "../provider/errors.js";
import type { InteropLogin } from "./login.js";

/** What a login process needs from its connector. */
export interface LoginHost {
  readonly engine: {
    readonly account: {
      requestCode(local: BareJid, phone: PhoneNumber): Promise<unknown>;
      confirmCode(local: BareJid, phone: PhoneNumber, code: string): Promise<unknown>;
      setHandle(local: BareJid, handle: string | undefined): Promise<void>;
    };
    createUser(jid: BareJid): Promise<unknown>;
  };
  /**
   * Publishes nothing: records the user as a provider user (interop_users) and builds and
   * registers the login once keys are published.
   */
  finish(user: MatrixUserId): Promise<InteropLogin>;
}

const PHONE_PATTERN = "^\\+[1-9][0-9]{7,14}$";
/** §9.1: codes are 6 decimal digits. */
const CODE_PATTERN = "^[0-9]{6}$";
/** §9.2: at most 64 characters, not starting with `+`; the gatekeeper checks the other rules. */
const HANDLE_PATTERN = "^[^+\\s].{0,63}$";

/**
 * Logging in with a verified phone number (§9.1): number, request-code, code, confirm-code, then
 * the keys are published (P4) and the login is complete. A wrong or expired code keeps the
 * process at the code step; any gatekeeper refusal is a BridgeError with text for the user.
 */
export class PhoneLoginProcess implements LoginProcess {
  private phone: PhoneNumber | undefined;

  constructor(
    private readonly user: MatrixUserId,
    private readonly jid: BareJid,
    private readonly host: LoginHost,
  ) {}

  async start(): Promise<LoginStep> {
    return {
      type: "input",
      stepId: "phone",
      instructions: "Send the phone number of your WhatsApp account, in international format.",
      fields: [
        {
          id: "phone",
          role: "address",
          name: "Phone number",
          description: "international format, e.g. +491701234567",
          pattern: PHONE_PATTERN,
        },
      ],
    };
  }

  async submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep> {
    if (stepId === "phone") {
      const phone = input["phone"]?.trim() ?? "";
      if (!isPhoneNumber(phone)) {
        throw new BridgeError("phone-invalid", `${phone} is not a phone number in +E.164 format`);
      }
      await userFacing(() => this.host.engine.account.requestCode(this.jid, phone));
      this.phone = phone;
      return codeStep(phone);
    }
    if (stepId === "code" && this.phone !== undefined) {
      const phone = this.phone;
      const code = input["code"]?.trim() ?? "";
      await userFacing(() => this.host.engine.account.confirmCode(this.jid, phone, code));
      await userFacing(() => this.host.engine.createUser(this.jid));
      return {
        type: "complete",
        instructions: `Logged in to WhatsApp as ${formatInternational(phone)}.`,
        login: await this.host.finish(this.user),
      };
    }
    throw new BridgeError("login-step-unknown", `this login has no step "${stepId}" now`);
  }

  async cancel(): Promise<void> {}
}

/**
 * Logging in unverified with a handle (§9.2): the handle is set, the keys are published and the
 * login is complete. Contacts see the handle, never a number.
 */
export class HandleLoginProcess implements LoginProcess {
  constructor(
    private readonly user: MatrixUserId,
    private readonly jid: BareJid,
    private readonly host: LoginHost,
  ) {}

  async start(): Promise<LoginStep> {
    return {
      type: "input",
      stepId: "handle",
      instructions: "Send the name WhatsApp users will see for you (not verified by WhatsApp).",
      fields: [
        {
          id: "handle",
          role: "handle",
          name: "Handle",
          description: "up to 64 characters, not starting with +, mostly not digits",
          pattern: HANDLE_PATTERN,
        },
      ],
    };
  }

  async submit(stepId: string, input: Readonly<Record<string, string>>): Promise<LoginStep> {
    if (stepId !== "handle") {
      throw new BridgeError("login-step-unknown", `this login has no step "${stepId}"`);
    }
    const handle = input["handle"]?.trim() ?? "";
    await userFacing(() => this.host.engine.account.setHandle(this.jid, handle));
    await userFacing(() => this.host.engine.createUser(this.jid));
    return {
      type: "complete",
      instructions: `Logged in to WhatsApp as "${handle}" (unverified).`,
      login: await this.host.finish(this.user),
    };
  }

  async cancel(): Promise<void> {}
}

function codeStep(phone: PhoneNumber): LoginStep {
  return {
    type: "input",
    stepId: "code",
    instructions: `WhatsApp sent a code to ${formatInternational(phone)}. Send it here.`,
    fields: [
      { id: "code", name: "Code", description: "the digits WhatsApp sent", pattern: CODE_PATTERN },
    ],
  };
}

/**
 * Runs a gatekeeper request and turns its refusal into text for the user (§18 conditions), so
 * that the core shows it and asks the step again instead of ending the login.
 */
async function userFacing<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof GatekeeperError)
      throw new BridgeError(err.app?.name ?? err.condition, explain(err), { cause: err });
    if (err instanceof ProviderError && err.code === "not-ready") {
      throw new BridgeError(
        "not-ready",
        "The bridge is not connected to WhatsApp right now; try again in a minute.",
        { cause: err },
      );
    }
    throw err;
  }
}

function explain(err: GatekeeperError): string {
  const app = err.app;
  const when = err.retryAt === undefined ? "" : ` Try again after ${noticeTime(err.retryAt)}.`;
  switch (app?.name) {
    case "code-invalid":
      return `That code is wrong; ${app.attemptsLeft} attempt(s) left.`;
    case "code-expired":
      return "That code expired or was replaced. Send `cancel` and log in again for a new code.";
    case "rate-limited":
      return `Too many attempts.${when}`;
    case "locked":
      return `This number is locked after too many wrong codes.${when}`;
    case "handle-invalid":
      return "WhatsApp does not accept this name (too long, mostly digits, or taken); pick another.";
    case "phone-invalid":
      return "WhatsApp does not accept this phone number.";
    default:
      return `WhatsApp refused: ${err.condition}${app === undefined ? "" : ` (${app.name})`}.`;
  }
}
