/**
 * The one way notices show a moment: `2026-12-07 14:48:26 UTC`. Notices do not know the reader's
 * time zone, so the zone is named; the date stays because a retry time may be tomorrow and a
 * message that failed to decrypt may be days old; seconds stay because rate limits count them.
 */
export function noticeTime(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}
