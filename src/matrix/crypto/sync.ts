import type { Knex } from "knex";
import { describeError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { CryptoHttp } from "./homeserver.js";
import type { DeviceMachine } from "./machine.js";

/** Long-poll time of one /sync; below the crypto HTTP timeout (30 s). */
const SYNC_TIMEOUT_MS = 20_000;
const MAX_BACKOFF_MS = 30_000;

/** Only what the crypto layer needs: no rooms, presence or account data. */
const FILTER = JSON.stringify({
  room: { rooms: [], account_data: { types: [] } },
  presence: { types: [] },
  account_data: { types: [] },
});

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * For homeservers that do not push to-device events and key counts in transactions: the device
 * syncs by itself. Its position (`next_batch`) is stored only after the machine has taken the
 * batch and its store is flushed, so a crash re-reads a batch rather than losing a room key (the
 * homeserver deletes to-device events only once a later `since` acknowledges them).
 */
export class DeviceSyncLoop {
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly machine: DeviceMachine,
    private readonly http: CryptoHttp,
    private readonly knex: Knex,
    private readonly log: Logger,
    private readonly onToDevice: () => void,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { userId, deviceId, accessToken } = this.machine.credentials;
    const where = { user_id: userId, device_id: deviceId };
    let backoff = 500;
    while (!this.stopped) {
      try {
        const row = (await this.knex("matrix_crypto_devices").where(where).first()) as
          { sync_since: string | null } | undefined;
        const since = row?.sync_since ?? undefined;
        const query = new URLSearchParams({
          timeout: String(since === undefined ? 0 : SYNC_TIMEOUT_MS),
          filter: FILTER,
          ...(since === undefined ? {} : { since }),
        });
        const answer = await this.http.request(
          "GET",
          `/_matrix/client/v3/sync?${query}`,
          accessToken,
        );
        if (this.stopped) return;
        const toDevice = isRecord(answer["to_device"]) ? answer["to_device"]["events"] : undefined;
        const lists = isRecord(answer["device_lists"]) ? answer["device_lists"] : {};
        const strings = (v: unknown) =>
          Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];
        const counts = answer["device_one_time_keys_count"];
        const fallback = answer["device_unused_fallback_key_types"];
        const events = Array.isArray(toDevice) ? (toDevice as Record<string, unknown>[]) : [];
        await this.machine.receive({
          toDevice: events,
          changed: strings(lists["changed"]),
          left: strings(lists["left"]),
          ...(isRecord(counts) ? { oneTimeKeyCounts: counts as Record<string, number> } : {}),
          ...(Array.isArray(fallback) ? { unusedFallbackKeyTypes: strings(fallback) } : {}),
        });
        if (events.length > 0) this.onToDevice();
        if (typeof answer["next_batch"] === "string") {
          await this.knex("matrix_crypto_devices")
            .where(where)
            .update({ sync_since: answer["next_batch"] });
        }
        backoff = 500;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: describeError(err), backoffMs: backoff }, "crypto /sync failed");
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }
}
