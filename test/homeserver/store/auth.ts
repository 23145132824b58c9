import { forbidden } from "../errors.js";
import type { RoomEvent } from "../types.js";
import type { Room } from "./room.js";

/**
 * The subset of the spec's authorization rules the tests rely on (membership transitions, power
 * levels for sending, state, invite, kick, ban; `@`-prefixed state keys). Throws M_FORBIDDEN with the
 * reason, the way a homeserver rejects a client request it would not be able to authorise.
 */
export function authorise(
  room: Room,
  event: Omit<RoomEvent, "event_id" | "origin_server_ts">,
): void {
  if (event.type === "m.room.create") {
    if (room.events.length > 0) throw forbidden("The room already has a create event");
    return;
  }
  if (event.type === "m.room.member") {
    authoriseMembership(room, event);
    return;
  }
  const sender = event.sender;
  if (room.membership(sender) !== "join")
    throw forbidden(`${sender} is not joined to room ${room.id}`);
  const isState = event.state_key !== undefined;
  const needed = room.eventLevel(event.type, isState);
  const has = room.userPowerLevel(sender);
  if (has < needed) {
    throw forbidden(
      `${sender} has power ${has} but sending ${event.type} in ${room.id} needs ${needed}`,
    );
  }
  if (isState && event.state_key?.startsWith("@") && event.state_key !== sender) {
    throw forbidden(`State key ${event.state_key} belongs to another user`);
  }
  if (event.type === "m.room.power_levels") authorisePowerLevels(room, sender, event.content);
}

function authoriseMembership(
  room: Room,
  event: Omit<RoomEvent, "event_id" | "origin_server_ts">,
): void {
  const target = event.state_key;
  if (target === undefined) throw forbidden("Member events need a state key");
  const membership = event.content["membership"];
  const sender = event.sender;
  const senderMembership = room.membership(sender);
  const targetMembership = room.membership(target);
  const senderPower = room.userPowerLevel(sender);
  const targetPower = room.userPowerLevel(target);
  switch (membership) {
    case "join": {
      if (sender !== target) throw forbidden("Cannot force another user to join");
      const onlyCreate =
        room.events.length === 1 && room.getState("m.room.create")?.sender === sender;
      if (onlyCreate) return;
      if (targetMembership === "ban") throw forbidden(`${sender} is banned from ${room.id}`);
      if (targetMembership === "join" || targetMembership === "invite") return;
      if (room.joinRule() === "public") return;
      throw forbidden(`${sender} is not invited to ${room.id} (join rule ${room.joinRule()})`);
    }
    case "invite": {
      if (senderMembership !== "join") throw forbidden(`${sender} is not joined to ${room.id}`);
      if (targetMembership === "join") throw forbidden(`${target} is already in the room`);
      if (targetMembership === "ban") throw forbidden(`${target} is banned from the room`);
      if (senderPower < room.actionLevel("invite"))
        throw forbidden(`${sender} may not invite in ${room.id}`);
      return;
    }
    case "leave": {
      if (sender === target) {
        if (
          targetMembership === "join" ||
          targetMembership === "invite" ||
          targetMembership === "knock"
        )
          return;
        throw forbidden(`${sender} is not in room ${room.id}`);
      }
      if (senderMembership !== "join") throw forbidden(`${sender} is not joined to ${room.id}`);
      if (targetMembership === "ban") {
        if (senderPower < room.actionLevel("ban"))
          throw forbidden(`${sender} may not unban in ${room.id}`);
        return;
      }
      if (targetMembership !== "join" && targetMembership !== "invite") {
        throw forbidden(`${target} is not in room ${room.id}`);
      }
      if (senderPower < room.actionLevel("kick") || senderPower <= targetPower) {
        throw forbidden(`${sender} may not kick ${target} in ${room.id}`);
      }
      return;
    }
    case "ban": {
      if (senderMembership !== "join") throw forbidden(`${sender} is not joined to ${room.id}`);
      if (senderPower < room.actionLevel("ban") || senderPower <= targetPower) {
        throw forbidden(`${sender} may not ban ${target} in ${room.id}`);
      }
      return;
    }
    default:
      throw forbidden(`Unsupported membership ${String(membership)}`);
  }
}

/** A user may not grant anyone, themselves included, more power than they hold. */
function authorisePowerLevels(room: Room, sender: string, content: Record<string, unknown>): void {
  const senderPower = room.userPowerLevel(sender);
  const users = content["users"];
  if (typeof users !== "object" || users === null) return;
  for (const [userId, level] of Object.entries(users)) {
    const before = room.userPowerLevel(userId);
    if (typeof level !== "number") continue;
    if (level === before) continue;
    if (level > senderPower)
      throw forbidden(`${sender} cannot raise ${userId} above their own power`);
    if (userId !== sender && before >= senderPower) {
      throw forbidden(`${sender} cannot change the power of ${userId}, who has at least as much`);
    }
  }
}
