import type { Request, Response, Router } from "express";
import type { Config } from "../config/schema.js";
import { isPhoneNumber, type PhoneNumber } from "../util/ids.js";
import { formatInternational } from "../util/phone.js";

/** The protocol id the registration advertises (`protocols: [whatsapp]`). */
export const PROTOCOL = "whatsapp";

/**
 * Where homeservers ask: the current spec path, the unstable one older Synapse releases used, and
 * the unprefixed legacy one (as for transactions, Synapse 1.67 talks to the bare `{url}/...`).
 */
const PREFIXES = ["/_matrix/app/v1/thirdparty", "/_matrix/app/unstable/thirdparty", "/thirdparty"];

/**
 * The third-party network lookups of the application service API (spec §"Third-party networks"):
 * the protocol's metadata for `/thirdparty/protocols`, and users by phone number (`?phone=`) or
 * by Matrix id (`?userid=`). The answers follow from the config alone (the ghost of a number is
 * a name, not an account): whether WhatsApp reaches the number is found out when a chat starts.
 * Every route checks the hs_token with `refuse` first; every answer, errors too, is JSON.
 */
export function mountThirdPartyRoutes(
  app: Pick<Router, "get">,
  config: Config,
  refuse: (req: Request, res: Response) => boolean,
): void {
  const ghosts = ghostNames(config);
  const guarded =
    (handler: (req: Request, res: Response) => void) => (req: Request, res: Response) => {
      if (refuse(req, res)) return;
      handler(req, res);
    };
  for (const prefix of PREFIXES) {
    app.get(
      `${prefix}/protocol/:protocol`,
      guarded((req, res) => {
        if (!knownProtocol(req, res)) return;
        res.json(protocolDescription(config.appservice.bot.avatar));
      }),
    );
    app.get(
      `${prefix}/user/:protocol`,
      guarded((req, res) => {
        if (!knownProtocol(req, res)) return;
        const given = req.query["phone"];
        if (typeof given !== "string" || given.trim() === "") {
          res
            .status(400)
            .json({ errcode: "M_MISSING_PARAM", error: "the phone field is required" });
          return;
        }
        const phone = parsePhoneField(given);
        if (phone === undefined) {
          notFound(res, "not an international phone number (+ country code and number)");
          return;
        }
        res.json([thirdPartyUser(ghosts.userIdOf(phone), phone)]);
      }),
    );
    app.get(
      `${prefix}/user`,
      guarded((req, res) => {
        const userId = req.query["userid"];
        if (typeof userId !== "string") {
          res
            .status(400)
            .json({ errcode: "M_MISSING_PARAM", error: "the userid parameter is required" });
          return;
        }
        const phone = ghosts.phoneOf(userId);
        if (phone === undefined) {
          notFound(res, "not a WhatsApp user of this bridge");
          return;
        }
        res.json([thirdPartyUser(userId, phone)]);
      }),
    );
    // No locations (rooms) are bridged by name: a chat is reached through its user.
    app.get(
      `${prefix}/location/:protocol`,
      guarded((req, res) => {
        if (!knownProtocol(req, res)) return;
        notFound(res, "WhatsApp chats have no public locations");
      }),
    );
    app.get(
      `${prefix}/location`,
      guarded((_req, res) => notFound(res, "WhatsApp chats have no public locations")),
    );
  }
}

function knownProtocol(req: Request, res: Response): boolean {
  if (req.params["protocol"] === PROTOCOL) return true;
  notFound(
    res,
    `unknown protocol ${String(req.params["protocol"])}; this bridge serves ${PROTOCOL}`,
  );
  return false;
}

function notFound(res: Response, error: string): void {
  res.status(404).json({ errcode: "M_NOT_FOUND", error });
}

/** The spec's Protocol object: one field (the number) and one instance (WhatsApp itself). */
function protocolDescription(icon: string) {
  return {
    user_fields: ["phone"],
    location_fields: [],
    icon,
    field_types: {
      phone: { regexp: "^\\+?[0-9 ()./-]{8,24}$", placeholder: "+49 151 12345678" },
    },
    instances: [{ desc: "WhatsApp", fields: {}, network_id: PROTOCOL }],
  };
}

function thirdPartyUser(userId: string, phone: PhoneNumber) {
  return { userid: userId, protocol: PROTOCOL, fields: { phone: formatInternational(phone) } };
}

/**
 * A number as people write it: `+49 151 12345678`, `+49 (151) 123-456-78`, `0049151...`, or the
 * digits with the country code. National forms without the country code cannot be told apart.
 */
export function parsePhoneField(text: string): PhoneNumber | undefined {
  const compact = text.trim().replace(/[\s()./-]/g, "");
  const international = compact.startsWith("00") ? `+${compact.slice(2)}` : compact;
  const withPlus = international.startsWith("+") ? international : `+${international}`;
  return isPhoneNumber(withPlus) ? withPlus : undefined;
}

function ghostNames(config: Config) {
  const template = config.appservice.ghost_localpart_template;
  const [before, after] = template.split("{phone}") as [string, string];
  const domain = config.homeserver.domain;
  return {
    userIdOf: (phone: PhoneNumber) => `@${before}${phone.slice(1)}${after}:${domain}`,
    phoneOf: (userId: string): PhoneNumber | undefined => {
      const suffix = `${after}:${domain}`;
      if (!userId.startsWith(`@${before}`) || !userId.endsWith(suffix)) return undefined;
      const digits = userId.slice(before.length + 1, userId.length - suffix.length);
      const phone = `+${digits}`;
      return /^[0-9]+$/.test(digits) && isPhoneNumber(phone) ? phone : undefined;
    },
  };
}
