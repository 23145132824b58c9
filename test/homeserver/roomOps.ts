import type { Requester } from "./auth.js";
import type { HomeserverCore } from "./core.js";
import { MatrixError, exclusive, invalidParam } from "./errors.js";
import { isObject, newOpaqueId } from "./events.js";
import { Room, type StoredEvent, type TxnOrigin } from "./store/room.js";
import type { JsonObject } from "./types.js";

const SUPPORTED_VERSIONS = new Set(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);

/** A member event for `target`, carrying the target's profile as Synapse adds it. */
export function setMembership(
  core: HomeserverCore,
  room: Room,
  sender: string,
  target: string,
  membership: string,
  extra: JsonObject = {},
  options: { txn?: TxnOrigin; ts?: number } = {},
): StoredEvent {
  const content: JsonObject = { membership, ...extra };
  const profile = core.users.get(target);
  if ((membership === "join" || membership === "invite") && profile !== undefined) {
    if (profile.displayname !== null && content["displayname"] === undefined)
      content["displayname"] = profile.displayname;
    if (profile.avatarUrl !== null && content["avatar_url"] === undefined)
      content["avatar_url"] = profile.avatarUrl;
  }
  return core.persist(room, { type: "m.room.member", sender, state_key: target, content }, options);
}

/** Checks that `alias` may be created by `who` (spec: M_EXCLUSIVE for others' exclusive namespaces). */
export function assertMayCreateAlias(core: HomeserverCore, who: Requester, alias: string): void {
  if (!/^#[^:]+:.+$/.test(alias)) throw invalidParam(`Invalid room alias ${alias}`);
  if (!alias.endsWith(`:${core.serverName}`)) throw invalidParam(`Alias ${alias} is not local`);
  const owner = core.appservices.exclusiveAliasOwner(alias);
  if (owner !== undefined && owner !== who.appservice)
    throw exclusive(`${alias} is reserved by an application service`);
  if (core.aliases.has(alias))
    throw new MatrixError(400, "M_ROOM_IN_USE", `${alias} already exists`);
}

export function addAlias(core: HomeserverCore, alias: string, room: Room, creator: string): void {
  core.aliases.set(alias, room.id);
  core.aliasCreators.set(alias, creator);
  room.aliases.add(alias);
}

function defaultPowerLevels(
  creator: string,
  preset: string,
  invitees: readonly string[],
): JsonObject {
  const users: Record<string, number> = { [creator]: 100 };
  if (preset === "trusted_private_chat") for (const invitee of invitees) users[invitee] = 100;
  return {
    users,
    users_default: 0,
    events: {
      "m.room.name": 50,
      "m.room.power_levels": 100,
      "m.room.history_visibility": 100,
      "m.room.canonical_alias": 50,
      "m.room.avatar": 50,
      "m.room.tombstone": 100,
      "m.room.server_acl": 100,
      "m.room.encryption": 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === "public_chat" ? 50 : 0,
    historical: 100,
  };
}

/** `POST /createRoom`, emitting events in the order the spec lists for room creation. */
export function createRoom(core: HomeserverCore, who: Requester, body: JsonObject): Room {
  const version =
    typeof body["room_version"] === "string" ? body["room_version"] : core.defaultRoomVersion;
  if (!SUPPORTED_VERSIONS.has(version)) {
    throw new MatrixError(
      400,
      "M_UNSUPPORTED_ROOM_VERSION",
      `Room version ${version} is not supported`,
    );
  }
  const invitees = Array.isArray(body["invite"])
    ? body["invite"].filter((u): u is string => typeof u === "string")
    : [];
  const visibility = body["visibility"] === "public" ? "public" : "private";
  const preset =
    typeof body["preset"] === "string"
      ? body["preset"]
      : visibility === "public"
        ? "public_chat"
        : "private_chat";
  if (!["private_chat", "public_chat", "trusted_private_chat"].includes(preset)) {
    throw invalidParam(`Unknown preset ${preset}`);
  }
  const aliasName = body["room_alias_name"];
  const alias = typeof aliasName === "string" ? `#${aliasName}:${core.serverName}` : undefined;
  if (alias !== undefined) assertMayCreateAlias(core, who, alias);
  for (const invitee of invitees) {
    if (!/^@[^:]+:.+$/.test(invitee)) throw invalidParam(`Invalid user id ${invitee}`);
  }

  const room = new Room(`!${newOpaqueId(18)}:${core.serverName}`, version);
  core.rooms.set(room.id, room);
  const creator = who.userId;
  const state = (type: string, content: JsonObject, stateKey = ""): void => {
    core.persist(room, { type, sender: creator, state_key: stateKey, content });
  };
  const creationContent = isObject(body["creation_content"]) ? body["creation_content"] : {};
  const createContent: JsonObject = { ...creationContent, room_version: version };
  if (Number(version) < 11) createContent["creator"] = creator;
  state("m.room.create", createContent);
  setMembership(core, room, creator, creator, "join");
  const override = isObject(body["power_level_content_override"])
    ? body["power_level_content_override"]
    : {};
  state("m.room.power_levels", { ...defaultPowerLevels(creator, preset, invitees), ...override });
  if (alias !== undefined) {
    addAlias(core, alias, room, creator);
    state("m.room.canonical_alias", { alias });
  }
  state("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" });
  state("m.room.history_visibility", { history_visibility: "shared" });
  if (preset !== "public_chat") state("m.room.guest_access", { guest_access: "can_join" });
  const initial = Array.isArray(body["initial_state"]) ? body["initial_state"] : [];
  for (const entry of initial) {
    if (!isObject(entry) || typeof entry["type"] !== "string" || !isObject(entry["content"])) {
      throw invalidParam("initial_state entries need a type and a content object");
    }
    const stateKey = typeof entry["state_key"] === "string" ? entry["state_key"] : "";
    state(entry["type"], entry["content"], stateKey);
  }
  if (typeof body["name"] === "string") state("m.room.name", { name: body["name"] });
  if (typeof body["topic"] === "string") state("m.room.topic", { topic: body["topic"] });
  for (const invitee of invitees) {
    setMembership(
      core,
      room,
      creator,
      invitee,
      "invite",
      body["is_direct"] === true ? { is_direct: true } : {},
    );
  }
  if (visibility === "public") core.publishedRooms.add(room.id);
  return room;
}
