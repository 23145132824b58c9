/** The handle rules of §9.2; returns what is wrong, or undefined for an acceptable handle. */
export function checkHandle(handle: string): string | undefined {
  const chars = [...handle];
  if (chars.length > 64) return "handle longer than 64 characters";
  if (/[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u.test(handle)) {
    return "handle contains a control, format, private-use, unassigned or separator character";
  }
  if (handle.startsWith("+")) return "handle starts with +";
  const digits = chars.filter((c) => /\p{Nd}/u.test(c)).length;
  if (digits > 4 || digits * 2 > chars.length) return "handle looks like a phone number";
  return undefined;
}

/** NFKC case folding, for the uniqueness rule of §9.2 (full case folding approximated). */
export function foldHandle(handle: string): string {
  return handle.normalize("NFKC").toLowerCase().toUpperCase().toLowerCase().normalize("NFKC");
}
