import { DEFAULT_LIMITS, type Limits } from "../src/interop/codec/limits.js";
import { FEATURE, GATEKEEPER_DOMAIN, GROUP_DOMAIN } from "../src/interop/codec/namespaces.js";
import { ConfigError } from "../src/util/errors.js";

/** A provider enlisted out of band (§8.1). */
export interface EnlistedProvider {
  /** 1-64 of `[a-z0-9-]`, e.g. `matrix-bridge-example`. */
  readonly id: string;
  /** Shown to gatekeeper users, e.g. "Example Matrix Bridge" (§9.3). */
  readonly name: string;
  /** The provider's XMPP component domain. */
  readonly domain: string;
  /** Component secret on the XMPP server (embedded mode configures the server with it). */
  readonly secret?: string;
}

/** Milliseconds since the epoch; every rule of the simulator reads time through it. */
export type Clock = () => number;

export interface GatekeeperSettings {
  readonly providers: readonly EnlistedProvider[];
  /** Every limit of §8.3; unset ones take the defaults. Announced in hello. */
  readonly limits: Limits;
  /** Optional features the gatekeeper announces (§8.3). */
  readonly features: readonly string[];
  readonly mediaOrigins: readonly string[];
  readonly domain: string;
  readonly groupDomain: string;
}

/** Features this simulator implements and announces: all of v0.2, groups (§17) included. */
export const SIMULATOR_FEATURES: readonly string[] = Object.values(FEATURE);

/** What the bridge's provider engine claims in tests: everything, groups (§17) included. */
export const ENGINE_FEATURES: readonly string[] = SIMULATOR_FEATURES;

const PROVIDER_ID = /^[a-z0-9-]{1,64}$/;

/** §8.3 size consistency: a maximum envelope for every device of one user fits one stanza. */
export function checkSizeConstraint(limits: Limits): void {
  const perKey = 4 * Math.ceil((limits["max-envelope-bytes"] + 4096) / 3);
  const needed = limits["max-devices-per-user"] * perKey + 4096;
  if (needed > limits["max-stanza-bytes"]) {
    throw new ConfigError(
      `limits violate the §8.3 size constraint: max-devices-per-user × 4·⌈(max-envelope-bytes + ` +
        `4096)/3⌉ + 4096 = ${needed} > max-stanza-bytes ${limits["max-stanza-bytes"]}`,
    );
  }
}

export function resolveSettings(options: {
  providers: readonly EnlistedProvider[];
  limits?: Partial<Limits>;
  features?: readonly string[];
  mediaOrigins?: readonly string[];
}): GatekeeperSettings {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  checkSizeConstraint(limits);
  const domains = new Set<string>();
  for (const p of options.providers) {
    if (!PROVIDER_ID.test(p.id))
      throw new ConfigError(`invalid provider id ${JSON.stringify(p.id)}`);
    if (p.domain !== p.domain.toLowerCase() || domains.has(p.domain)) {
      throw new ConfigError(`provider domain ${p.domain} is not lowercase or enlisted twice`);
    }
    if (p.domain === GATEKEEPER_DOMAIN || p.domain === GROUP_DOMAIN) {
      throw new ConfigError(`provider domain ${p.domain} is a gatekeeper domain`);
    }
    domains.add(p.domain);
  }
  return {
    providers: options.providers,
    limits,
    features: options.features ?? SIMULATOR_FEATURES,
    mediaOrigins: options.mediaOrigins ?? ["http://127.0.0.1"],
    domain: GATEKEEPER_DOMAIN,
    groupDomain: GROUP_DOMAIN,
  };
}
