export { LOOPBACK_DESCRIPTION, loopbackIdentifier } from "./description.js";
export { LoopbackNetwork } from "./network.js";
export { MAX_GROUP_SIZE, type LoopbackGroup } from "./groups.js";
