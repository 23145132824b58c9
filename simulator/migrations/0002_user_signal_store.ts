/**
 * The simulated gatekeeper users' own Signal stores (simulator/users/): the same tables as the
 * bridge's, created by the bridge's migration so that SignalCrypto runs unchanged on them.
 */
export { up, down } from "../../migrations/0002_signal_store.js";
