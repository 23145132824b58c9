import * as sdk from "matrix-js-sdk";

/**
 * matrix-js-sdk clients for tests that end cleanly: once stopped, a client leaves nothing that keeps
 * the test process alive. Create every syncing or crypto-enabled js-sdk client in the tests through
 * `createSdkClient` (or call `unrefStraySdkTimers` before one made elsewhere, like the demo's
 * EncryptingMatrixUser, starts) and end it with `stopSdkClient`, before stopping the homeserver.
 *
 * What js-sdk 37 leaves behind after `stopClient()`, and how this module deals with each:
 *
 * - `stopClient()` stops the sync loop and the Rust crypto's request loop, but requests already in
 *   flight go on. The crypto's `OutgoingRequestProcessor.requestWithRetry` retries a failed request
 *   up to four times with 2, 4, 8, 16 s sleeps, so a client stopped just before its homeserver kept
 *   retrying against a closed port for half a minute. `stopSdkClient` aborts what is in flight
 *   (`http.abort()`: an `AbortError`, which js-sdk never retries) and then refuses every later
 *   request of the client with an `AbortError` too, so a retry that was asleep ends when it wakes.
 * - Two js-sdk timers are never cleared, by stop or otherwise (`KNOWN_STRAY_TIMERS` below): each
 *   request given a local timeout (each `/sync`: poll timeout + 80 s; each crypto request: 60 s)
 *   arms one in `http-api/utils.js` `timeoutSignal` that stays armed after the request finished
 *   (one client held the process up to 110 s after its last sync); and the Rust crypto waits 5 min
 *   for every live event that failed to decrypt (`onLiveEventFromSync`: a second device never gets
 *   the keys of earlier messages) before dropping a listener. js-sdk's code cannot be fixed from
 *   here (the package is shared, not patched), so these timers, and only these, are unref'd: they
 *   still fire while something else keeps the process running, but do not keep it alive on their
 *   own (the semantics of the platform's `AbortSignal.timeout` that `timeoutSignal` stands in for).
 *   See `unrefStraySdkTimers`.
 */

/**
 * `sdk.createClient`, after making sure the js-sdk timers that nothing clears cannot hold the
 * process (`unrefStraySdkTimers`; that must happen before the client's first request).
 */
export function createSdkClient(opts: sdk.ICreateClientOpts): sdk.MatrixClient {
  unrefStraySdkTimers();
  return sdk.createClient(opts);
}

/**
 * Stops syncing and the crypto backend (closing its OlmMachine), aborts every request in flight and
 * refuses later ones, so no retry loop outlives the client. Works on any js-sdk client (also one a
 * demo helper made); idempotent. Stop clients before the homeserver they talk to.
 */
export function stopSdkClient(client: sdk.MatrixClient): void {
  client.stopClient();
  client.http.abort();
  // `requestOtherUrl` goes through this method for every request, a retry's too; an AbortError is
  // the one failure js-sdk never retries (calculateRetryBackoff).
  client.http.fetch = () =>
    Promise.reject(new DOMException("the test stopped this client", "AbortError"));
}

/**
 * The js-sdk timers that are never cleared, recognised by the function that arms them (the
 * wrapper's direct caller: a source-mapped `.ts` frame under tsx, `.js` without) and their delay.
 * matrix-js-sdk 37.5.
 */
const KNOWN_STRAY_TIMERS: { what: string; caller: RegExp; ms: (ms: number) => boolean }[] = [
  {
    what: "a request's local deadline (http-api/utils timeoutSignal)",
    caller: /\btimeoutSignal\b.*matrix-js-sdk\/(?:src|lib)\/http-api\/utils\.[jt]s:/,
    ms: (ms) => ms >= 10_000,
  },
  {
    what: "the 5 min wait for a live event to decrypt (RustCrypto.onLiveEventFromSync)",
    caller: /matrix-js-sdk\/(?:src|lib)\/rust-crypto\/rust-crypto\.[jt]s:/,
    ms: (ms) => ms === 5 * 60 * 1000,
  },
];

let strayTimersUnrefd = false;

/**
 * Wraps the global setTimeout once per process so that the timers in `KNOWN_STRAY_TIMERS` are
 * unref'd (see the module comment). Only timers of 10 s or more pay for a two-frame stack capture;
 * every other timer keeps its normal behaviour. If a js-sdk upgrade moves one of these, its timers
 * simply stay ref'd and the leak report (test/helpers/leaks.ts) shows them again. Permanent rather
 * than scoped to a suite, because requests, and their timers, can start after the suite that made
 * the client has ended.
 */
export function unrefStraySdkTimers(): void {
  if (strayTimersUnrefd) return;
  strayTimersUnrefd = true;
  const real = globalThis.setTimeout;
  const wrapped = (handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = real(handler, ms, ...args);
    if (ms !== undefined && ms >= 10_000 && isKnownStrayTimer(ms)) timer.unref();
    return timer;
  };
  globalThis.setTimeout = Object.assign(wrapped, real) as typeof setTimeout;
}

function isKnownStrayTimer(ms: number): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 2;
  const probe: { stack?: string } = {};
  // Frames from the wrapper down: the wrapper, then the code that called setTimeout.
  Error.captureStackTrace(probe, isKnownStrayTimer);
  Error.stackTraceLimit = limit;
  const caller = probe.stack?.split("\n")[2] ?? "";
  return KNOWN_STRAY_TIMERS.some((known) => known.ms(ms) && known.caller.test(caller));
}
