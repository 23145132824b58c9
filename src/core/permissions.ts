import type { PermissionLevel } from "../config/schema.js";
import type { MatrixUserId } from "../util/ids.js";

const RANK: Record<PermissionLevel, number> = { none: 0, user: 1, admin: 2 };

/**
 * The permission of a Matrix user under the config's `permissions` map: the most specific entry
 * wins (the full user id, then the user's server name, then `*`); without any match, none.
 */
export function permissionOf(
  permissions: Readonly<Record<string, PermissionLevel>>,
  user: MatrixUserId,
): PermissionLevel {
  const server = user.slice(user.indexOf(":") + 1);
  return permissions[user] ?? permissions[server] ?? permissions["*"] ?? "none";
}

export function hasPermission(level: PermissionLevel, required: PermissionLevel): boolean {
  return RANK[level] >= RANK[required];
}
