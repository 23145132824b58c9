import { z } from "zod";
import type { GroupInfo } from "../../src/interop/codec/index.js";
import type { BareJid, PhoneNumber } from "../../src/util/ids.js";
import { Refusal } from "../errors.js";
import { infoOf } from "../groups/store.js";
import { AdminError } from "./server.js";
import { parse, phoneParam, type Route } from "./routes.js";
import type { AdminDeps, RouteInput, RouteResult } from "./types.js";

const DIGITS = "([1-9][0-9]{7,14})";
const GROUP = "([a-z0-9-]{1,64}@[^/]+)";

const Create = z.object({
  subject: z.string().optional(),
  participants: z.array(z.string().min(3)).max(1024),
});
const Participants = z.object({ participants: z.array(z.string().min(3)).min(1).max(1024) });
const Subject = z.object({ subject: z.string() });
const Text = z.object({ text: z.string().min(1) });

/** A group as JSON: dates as ISO strings. */
const json = (g: GroupInfo) => ({ ...g, created: g.created.toISOString() });

/**
 * Groups in the admin API (§17): simulated WhatsApp users create and change groups and send in
 * them; `GET /groups/{jid}` shows any group to the operator. Refusals keep their §18 condition
 * (`not-member`, `not-admin`, `group-full`, `rate-limited`) as the error code.
 */
export function groupRoutes(d: AdminDeps): Route[] {
  const { users, gatekeeper } = d;
  const route = (
    method: string,
    path: string,
    run: (i: RouteInput) => Promise<RouteResult>,
  ): Route => ({
    method,
    path: new RegExp(`^${path}$`),
    run: (i) =>
      run(i).catch((err: unknown) => {
        if (!(err instanceof Refusal)) throw err;
        const code = err.error.app?.name ?? err.error.condition;
        throw new AdminError(code === "rate-limited" ? 429 : 403, code, err.message);
      }),
  });
  const phone = (p: string | undefined): PhoneNumber => phoneParam(p);
  return [
    route("GET", "/groups", async () => ({ body: { groups: await gatekeeper.groupStore.list() } })),
    route("GET", `/groups/${GROUP}`, async ({ params }) => {
      const jid = params[0] as BareJid;
      const group = await gatekeeper.groupStore.get(jid);
      if (group === undefined) throw new AdminError(404, "no-such-group", `${jid} is unknown`);
      return { body: json(infoOf(group, await gatekeeper.groupStore.members(jid))) };
    }),
    route("POST", `/users/${DIGITS}/groups`, async ({ params, body }) => {
      const r = parse(Create, body);
      const g = await users.createGroup(phone(params[0]), r.subject, r.participants as BareJid[]);
      return { status: 201, body: json(g) };
    }),
    route(
      "POST",
      `/users/${DIGITS}/groups/${GROUP}/(add|remove|promote|demote)`,
      async ({ params, body }) => {
        const r = parse(Participants, body);
        const op = params[2] as "add" | "remove" | "promote" | "demote";
        const g = await users.changeGroup(phone(params[0]), params[1] as BareJid, {
          op,
          participants: r.participants as BareJid[],
        });
        return { body: json(g) };
      },
    ),
    route("PUT", `/users/${DIGITS}/groups/${GROUP}/subject`, async ({ params, body }) => {
      const r = parse(Subject, body);
      const g = await users.changeGroup(phone(params[0]), params[1] as BareJid, {
        op: "subject",
        subject: r.subject,
      });
      return { body: json(g) };
    }),
    route("POST", `/users/${DIGITS}/groups/${GROUP}/leave`, async ({ params }) => {
      const g = await users.changeGroup(phone(params[0]), params[1] as BareJid, { op: "leave" });
      return { body: json(g) };
    }),
    route("POST", `/users/${DIGITS}/groups/${GROUP}/send`, async ({ params, body }) => {
      const r = parse(Text, body);
      const sent = await users.sendToGroup(phone(params[0]), params[1] as BareJid, [
        { kind: "body", text: r.text },
      ]);
      return { status: 201, body: sent };
    }),
  ];
}
