import type { Request, Response, Router } from "express";
import type { Config } from "../config/schema.js";
import type { NetworkDescription, ThirdPartyField } from "../core/network.js";
import type { ContactAddress } from "../util/ids.js";

export { parsePhoneField } from "../util/phone.js";

/**
 * Where homeservers ask: the current spec path, the unstable one older Synapse releases used, and
 * the unprefixed legacy one (as for transactions, Synapse 1.67 talks to the bare `{url}/...`).
 */
const PREFIXES = ["/_matrix/app/v1/thirdparty", "/_matrix/app/unstable/thirdparty", "/thirdparty"];

/**
 * The third-party network lookups of the application service API (spec §"Third-party networks"):
 * the protocol's metadata for `/thirdparty/protocols`, and users by address (the network's field,
 * interop: `?phone=`) or by Matrix id (`?userid=`). The protocol is the network's id (the
 * registration's `protocols`). The answers follow from the config and the network's description
 * alone (the ghost of an address is a name, not an account): whether the network reaches the
 * address is found out when a chat starts. Every route checks the hs_token with `refuse` first;
 * every answer, errors too, is JSON.
 */
export function mountThirdPartyRoutes(
  app: Pick<Router, "get">,
  config: Config,
  network: NetworkDescription,
  refuse: (req: Request, res: Response) => boolean,
): void {
  const ghosts = ghostNames(config, network);
  const field = fieldOf(network);
  const protocol = network.id;
  const noLocations = `${network.displayName} chats have no public locations`;
  const knownProtocol = (req: Request, res: Response): boolean => {
    if (req.params["protocol"] === protocol) return true;
    notFound(
      res,
      `unknown protocol ${String(req.params["protocol"])}; this bridge serves ${protocol}`,
    );
    return false;
  };
  const thirdPartyUser = (userId: string, address: ContactAddress) => ({
    userid: userId,
    protocol,
    fields: { [field.name]: network.identifier.format(address) },
  });
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
        res.json(protocolDescription(network, field, config.appservice.bot.avatar));
      }),
    );
    app.get(
      `${prefix}/user/:protocol`,
      guarded((req, res) => {
        if (!knownProtocol(req, res)) return;
        const given = req.query[field.name];
        if (typeof given !== "string" || given.trim() === "") {
          res
            .status(400)
            .json({ errcode: "M_MISSING_PARAM", error: `the ${field.name} field is required` });
          return;
        }
        const address = field.parse(given);
        if (address === undefined) {
          notFound(res, `not a ${network.displayName} ${network.identifier.noun}`);
          return;
        }
        res.json([thirdPartyUser(ghosts.userIdOf(address), address)]);
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
        const address = ghosts.addressOf(userId);
        if (address === undefined) {
          notFound(res, `not a ${network.displayName} user of this bridge`);
          return;
        }
        res.json([thirdPartyUser(userId, address)]);
      }),
    );
    // No locations (rooms) are bridged by name: a chat is reached through its user.
    app.get(
      `${prefix}/location/:protocol`,
      guarded((req, res) => {
        if (!knownProtocol(req, res)) return;
        notFound(res, noLocations);
      }),
    );
    app.get(
      `${prefix}/location`,
      guarded((_req, res) => notFound(res, noLocations)),
    );
  }
}

function notFound(res: Response, error: string): void {
  res.status(404).json({ errcode: "M_NOT_FOUND", error });
}

/** The field users look a contact up by: the network's own, or one named after its noun. */
function fieldOf(network: NetworkDescription): ThirdPartyField {
  const { identifier } = network;
  return (
    identifier.thirdPartyField ?? {
      name: identifier.noun,
      regexp: ".+",
      placeholder: identifier.example,
      parse: (text) => identifier.parse(text.trim()),
    }
  );
}

/** The spec's Protocol object: one field (the address) and one instance (the network itself). */
function protocolDescription(network: NetworkDescription, field: ThirdPartyField, icon: string) {
  return {
    user_fields: [field.name],
    location_fields: [],
    icon,
    field_types: {
      [field.name]: { regexp: field.regexp, placeholder: field.placeholder },
    },
    instances: [{ desc: network.displayName, fields: {}, network_id: network.id }],
  };
}

/** Ghost ids of addresses and back, by the network's template (as core/ghosts.ts names them). */
function ghostNames(config: Config, network: NetworkDescription) {
  const [before, after] = network.ghostLocalpartTemplate.split("{id}") as [string, string];
  const domain = config.homeserver.domain;
  return {
    userIdOf: (address: ContactAddress) =>
      `@${before}${network.identifier.toLocalpart(address)}${after}:${domain}`,
    addressOf: (userId: string): ContactAddress | undefined => {
      const suffix = `${after}:${domain}`;
      if (!userId.startsWith(`@${before}`) || !userId.endsWith(suffix)) return undefined;
      if (userId.length < before.length + 1 + suffix.length) return undefined;
      return network.identifier.fromLocalpart(
        userId.slice(before.length + 1, userId.length - suffix.length),
      );
    },
  };
}
