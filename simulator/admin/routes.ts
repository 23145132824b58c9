import { z } from "zod";
import {
  isPhoneNumber,
  type BareJid,
  type DeviceId,
  type PhoneNumber,
} from "../../src/util/ids.js";
import { AdminError } from "./server.js";
import { sendAsUser, SendSchema } from "./send.js";
import { groupRoutes } from "./groups.js";
import type { AdminDeps, RouteInput, RouteResult } from "./types.js";

export interface Route {
  readonly method: string;
  readonly path: RegExp;
  /** Reachable without the bearer token (Appendix A). */
  readonly public?: boolean;
  run(input: RouteInput): Promise<RouteResult>;
}

const DIGITS = "([1-9][0-9]{7,14})";
const JID = "([^/]+)";

export function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new AdminError(
      400,
      "invalid-request",
      `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`,
    );
  }
  return result.data;
}

export function phoneParam(digits: string | undefined): PhoneNumber {
  const phone = `+${digits ?? ""}`;
  if (!isPhoneNumber(phone)) throw new AdminError(400, "phone-invalid", `${phone} is not E.164`);
  return phone;
}

const CreateUser = z.object({
  phone: z.string().refine(isPhoneNumber, "E.164 with leading +"),
  devices: z.number().int().min(1).max(5).optional(),
  optedIn: z.boolean().optional(),
  allowedProviders: z.array(z.string()).optional(),
});
const OptIn = z.object({
  optedIn: z.boolean(),
  allowedProviders: z.array(z.string()).nullable().optional(),
});
const Target = z.object({ jid: z.string().min(3) });
const Report = z.object({
  jid: z.string().min(3),
  reason: z.enum(["spam", "phishing", "abuse", "impersonation", "other"]),
  block: z.boolean().optional(),
});

/** The admin routes; paths are matched in order. */
export function routes(d: AdminDeps): Route[] {
  const { users, gatekeeper } = d;
  const exists = async (phone: PhoneNumber) => {
    const account = await gatekeeper.accounts.get(users.jidOf(phone));
    if (account === undefined) throw new AdminError(404, "no-such-user", `${phone} is not a user`);
    return account;
  };
  const route = (
    method: string,
    path: string,
    run: (i: RouteInput) => Promise<RouteResult>,
    pub = false,
  ): Route => ({ method, path: new RegExp(`^${path}$`), run, public: pub });
  return [
    route(
      "GET",
      `/_test/verification-codes/${DIGITS}`,
      async ({ params }) => {
        const code = await gatekeeper.services.identity.latestCode(phoneParam(params[0]));
        if (code === undefined) throw new AdminError(404, "no-code", "no valid code");
        return {
          body: { phone: code.phone, code: code.code, expires: code.expires.toISOString() },
        };
      },
      true,
    ),
    route("POST", "/users", async ({ body }) => {
      const u = parse(CreateUser, body);
      const created = await users.create({
        phone: u.phone as PhoneNumber,
        ...(u.devices === undefined ? {} : { devices: u.devices }),
        ...(u.optedIn === undefined ? {} : { optedIn: u.optedIn }),
        ...(u.allowedProviders === undefined ? {} : { allowedProviders: u.allowedProviders }),
      });
      return { status: 201, body: { ...created.account, devices: created.devices } };
    }),
    route("GET", "/users", async () => ({ body: { users: await gatekeeper.accounts.list() } })),
    route("GET", `/users/${DIGITS}`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      const account = await exists(phone);
      return { body: { ...account, devices: await users.activeDevices(phone) } };
    }),
    route("POST", `/users/${DIGITS}/devices`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      return { status: 201, body: { device: await users.addDevice(phone) } };
    }),
    route("DELETE", `/users/${DIGITS}/devices/([0-9]{1,3})`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      await users.removeDevice(phone, Number(params[1]) as DeviceId);
      return { body: { devices: await users.activeDevices(phone) } };
    }),
    route("POST", `/users/${DIGITS}/reset-identity`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      return { body: { device: await users.resetIdentity(phone) } };
    }),
    route("PUT", `/users/${DIGITS}/opt-in`, async ({ params, body }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      const o = parse(OptIn, body);
      return { body: await users.setOptIn(phone, o.optedIn, o.allowedProviders) };
    }),
    route("POST", `/users/${DIGITS}/send`, async ({ params, body }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      return { body: await sendAsUser(users, phone, parse(SendSchema, body)) };
    }),
    route("GET", `/users/${DIGITS}/received`, async ({ params, query }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      return { body: { entries: await users.received(phone, query.get("kind") ?? undefined) } };
    }),
    route("POST", `/users/${DIGITS}/requests/${JID}/(accept|decline)`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      const jid = params[1] as BareJid;
      const done =
        params[2] === "accept"
          ? await users.acceptRequest(phone, jid)
          : await users.declineRequest(phone, jid);
      if (!done) throw new AdminError(404, "no-pending-request", `no pending request from ${jid}`);
      return { body: { ok: true } };
    }),
    route("POST", `/users/${DIGITS}/blocks`, async ({ params, body }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      await users.block(phone, parse(Target, body).jid as BareJid);
      return { body: { ok: true } };
    }),
    route("DELETE", `/users/${DIGITS}/blocks/${JID}`, async ({ params }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      await users.unblock(phone, params[1] as BareJid);
      return { body: { ok: true } };
    }),
    route("POST", `/users/${DIGITS}/reports`, async ({ params, body }) => {
      const phone = phoneParam(params[0]);
      await exists(phone);
      const r = parse(Report, body);
      await users.report(phone, r.jid as BareJid, r.reason, r.block ?? false);
      return { status: 201, body: { ok: true } };
    }),
    route("GET", "/reports", async () => ({
      body: { reports: await gatekeeper.services.abuse.reports() },
    })),
    route("GET", "/queue", async () => {
      const perProvider: Record<string, number> = {};
      for (const p of gatekeeper.ctx.settings.providers) {
        perProvider[p.domain] = await gatekeeper.services.queue.depth(p.domain);
      }
      return { body: { depth: await gatekeeper.services.queue.depth(), perProvider } };
    }),
    ...groupRoutes(d),
  ];
}
