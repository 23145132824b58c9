/**
 * Column readers shared by the table modules. SQLite returns booleans as 0/1 and PostgreSQL as
 * true/false; int8 columns come back as numbers on both (see database.ts).
 */
export function readBool(value: unknown): boolean {
  return value === true || value === 1 || value === "1" || value === "t";
}

export function readNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function readStringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
