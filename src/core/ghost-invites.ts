import type { PermissionLevel } from "../config/schema.js";
import { BridgeError } from "../util/errors.js";
import type { ContactAddress, MatrixUserId, RoomId } from "../util/ids.js";
import type { Logger } from "../util/log.js";
import type { GhostManager } from "./ghosts.js";
import type { MatrixApi } from "./matrix-api.js";
import { isGroupCapable, type NetworkLogin } from "./network.js";
import type { LinkOutcome, PortalManager } from "./portals.js";
import { UserLimitError } from "./rate-limits.js";
import { groupInviteOffer, notLoggedIn, notReachable } from "./texts.js";

/** What answering a ghost invite needs of the core: narrow, so it is testable on its own. */
interface GhostInvitePorts {
  readonly matrix: MatrixApi;
  readonly ghosts: GhostManager;
  readonly portals: PortalManager;
  readonly log: Logger;
  permissionOf(user: MatrixUserId): PermissionLevel;
  login(user: MatrixUserId): NetworkLogin | undefined;
  /** Counts a new chat against the user's hourly limit; throws UserLimitError beyond it. */
  takeNewChat(user: MatrixUserId): void;
}

/**
 * A user invited a ghost (`@<template with the address>:domain`) to a room of theirs: as in
 * mautrix, that starts the chat with the address in that room, or links the room to the user's chat with it
 * when that chat has no room. Whatever cannot be done is answered by the ghost with a notice in
 * the room before it leaves, so an invite never stays pending without a word: no permission, not
 * logged in, not a direct chat, an unreachable address, a chat that already has its room, the
 * user's new-chat limit.
 */
export async function answerGhostInvite(
  ports: GhostInvitePorts,
  invite: { user: MatrixUserId; room: RoomId; ghost: MatrixUserId; isDirect: boolean },
): Promise<void> {
  const { matrix, ghosts, log } = ports;
  const { user, room, ghost } = invite;
  const address = ghosts.addressOfGhost(ghost);
  if (address === undefined) return;
  const shown = ghosts.format(address);
  const refuse = async (why: string): Promise<void> => {
    log.info({ user, room, ghost, why }, "ghost invite refused");
    try {
      await matrix.ensureGhost(ghost, ghosts.displayNameFor(address));
      await matrix.join(ghost, room);
      await matrix.sendContent(ghost, room, {
        type: "text",
        notice: true,
        text: { text: why, spans: [] },
      });
    } finally {
      await matrix.leave(ghost, room);
    }
  };
  if (ports.permissionOf(user) === "none") {
    await refuse("This bridge does not serve your account, so I cannot chat here.");
    return;
  }
  const login = ports.login(user);
  if (login === undefined) {
    await refuse(
      `${notLoggedIn} (in a direct chat with ${matrix.botUserId}), then invite me again.`,
    );
    return;
  }
  if (!invite.isDirect) {
    if (isGroupCapable(login)) {
      // A room of several people: its counterpart is a group (bridgev2's `create-group` makes
      // the current room one). The ghost stays and brings the bot, which offers it.
      await matrix.ensureGhost(ghost, ghosts.displayNameFor(address));
      await matrix.join(ghost, room);
      await matrix.invite(ghost, room, matrix.botUserId).catch((err: unknown) => {
        log.debug({ err, room }, "bot not invited by the ghost");
      });
      await matrix.join(matrix.botUserId, room);
      await matrix.sendNotice(room, groupInviteOffer(shown, ghosts.network.commandPrefix));
      return;
    }
    await refuse(
      "I only join direct chats: start a direct chat with me to write to " + `${shown}.`,
    );
    return;
  }
  const outcome = await link(ports, login, user, room, address).catch((err: unknown) => {
    if (err instanceof UserLimitError || err instanceof BridgeError) return err;
    throw err;
  });
  if (outcome instanceof Error) {
    await refuse(outcome.message);
    return;
  }
  if (outcome.kind === "unreachable") {
    await refuse(notReachable(shown, ghosts.network));
    return;
  }
  if (outcome.kind === "elsewhere") {
    await refuse(
      `You already have a chat with ${shown} in another room ` + `(${outcome.room}); write there.`,
    );
    return;
  }
  if (outcome.kind === "room-in-use") {
    await refuse(
      "This room is already used by the bridge (for another chat or for its commands). To " +
        `write to ${shown}, start a new direct chat with me.`,
    );
    return;
  }
  log.info({ user, room, ghost }, "room linked to the chat by a ghost invite");
}

async function link(
  ports: GhostInvitePorts,
  login: NetworkLogin,
  user: MatrixUserId,
  room: RoomId,
  address: ContactAddress,
): Promise<LinkOutcome | { kind: "unreachable" }> {
  const known = await ports.ghosts.byAddress(address);
  const existing = known === undefined ? undefined : await ports.portals.roomOf(user, known);
  if (existing === undefined) ports.takeNewChat(user);
  const resolution = await login.resolveAddress(address);
  if (!resolution.reachable) return { kind: "unreachable" };
  return ports.portals.linkRoom(user, resolution.contact, room);
}
