export { LOOPBACK_DESCRIPTION, loopbackIdentifier } from "./description.js";
export {
  LoopbackLogin,
  LoopbackNetwork,
  LoopbackRemoteUser,
  type LoopbackMessage,
} from "./network.js";
export { MAX_GROUP_SIZE, loopbackMember, type LoopbackGroup } from "./groups.js";
