import type { AbuseService } from "./services/abuse.js";
import type { HelloService } from "./services/hello.js";
import type { IdentityService } from "./services/identity.js";
import type { KeyDirectory } from "./services/keys.js";
import type { Reachability } from "./services/reach.js";
import type { DeliveryQueue } from "./delivery/queue.js";
import type { MediaStore } from "./media/store.js";

/** The gatekeeper's services, wired once by `Gatekeeper` and shared by its stanza handlers. */
export interface Services {
  readonly hello: HelloService;
  readonly identity: IdentityService;
  readonly reach: Reachability;
  readonly keys: KeyDirectory;
  readonly abuse: AbuseService;
  readonly queue: DeliveryQueue;
  readonly media: MediaStore | undefined;
}
