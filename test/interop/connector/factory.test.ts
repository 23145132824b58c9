import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { validateConfig } from "../../../src/config/load.js";
import {
  hasContactAddresses,
  isContactDirectory,
  type CoreCallbacks,
  type RemoteEvent,
  type RemoteUserId,
} from "../../../src/core/network.js";
import { InteropConnector } from "../../../src/interop/connector/connector.js";
import { createInteropConnector } from "../../../src/interop/connector/factory.js";
import { startEmbeddedGatekeeper } from "../../../simulator/embedded-gatekeeper.js";
import { KeyVault } from "../../../src/vault/key-vault.js";
import { matrixUserId, phoneNumber } from "../../../src/util/ids.js";
import { StartupError } from "../../../src/util/errors.js";
import { silentLogger } from "../../../src/util/log.js";
import { createTestDatabase, type TestDatabase } from "../../helpers/db.js";

let simulatorDir = "";
const config = (interop: Record<string, unknown>) =>
  validateConfig(
    {
      homeserver: { url: "http://127.0.0.1:1", domain: "example.org" },
      interop: { embedded_data_dir: simulatorDir, ...interop },
    },
    "config.yaml",
  );

describe("building the interop connector from the configuration", function () {
  this.timeout(20_000);
  let db: TestDatabase;
  const states: RemoteEvent[] = [];
  const callbacks: CoreCallbacks = {
    report: async (_user, event) => {
      states.push(event);
    },
  };

  beforeEach(async function () {
    simulatorDir = await mkdtemp(path.join(tmpdir(), "mwi-embedded-"));
    db = await createTestDatabase("sqlite");
    states.length = 0;
  });
  afterEach(async function () {
    await db.dispose();
    await rm(simulatorDir, { recursive: true, force: true });
  });

  const deps = () => ({
    db: db.db,
    vault: KeyVault.fromKey(Buffer.alloc(32, 9)),
    log: silentLogger(),
    startEmbedded: startEmbeddedGatekeeper,
  });

  it("external mode builds a connector for the configured component, offering both login flows", function () {
    const connector = createInteropConnector(
      config({ mode: "external", component_secret: "s3cret" }),
      callbacks,
      deps(),
    );
    assert.ok(connector instanceof InteropConnector);
    assert.equal(connector.engine.state.code, "stopped", "nothing connects before start");
    assert.deepEqual(
      connector.loginFlows().map((f) => f.id),
      ["phone", "handle"],
    );
  });

  it("embedded mode starts an in-process gatekeeper, is connected after start, and logs in", async function () {
    const connector = createInteropConnector(config({ mode: "embedded" }), callbacks, deps());
    await connector.start();
    try {
      const process = connector.createLogin(matrixUserId("@dave:example.org"), "handle");
      await process.start();
      const done = await process.submit("handle", { handle: "Dave" });
      assert.equal(done.type, "complete");
      assert.equal(done.type === "complete" && done.login.state().code, "connected");
      const loaded = await connector.loadLogin(matrixUserId("@dave:example.org"));
      assert.equal(loaded.state().code, "connected", "keys are stored, so the login loads");
      const stranger = await connector.loadLogin(matrixUserId("@erin:example.org"));
      assert.equal(stranger.state().code, "logged-out", "no keys: logged out");
    } finally {
      await connector.stop();
    }
  });

  it("embedded mode without an injected gatekeeper is refused with a startup error naming the mode", function () {
    const { startEmbedded: _injected, ...withoutGatekeeper } = deps();
    assert.throws(
      () => createInteropConnector(config({ mode: "embedded" }), callbacks, withoutGatekeeper),
      (err: unknown) =>
        err instanceof StartupError &&
        err.code === "embedded-gatekeeper-unavailable" &&
        /interop\.mode/.test(err.message),
    );
  });

  it("names contacts by number without asking the network (§5.1)", function () {
    const connector = createInteropConnector(config({ mode: "embedded" }), callbacks, deps());
    assert.ok(isContactDirectory(connector) && hasContactAddresses(connector));
    assert.equal(
      connector.contactForAddress(phoneNumber("+491701234567")),
      "491701234567@wa.example",
    );
    assert.equal(connector.addressOf("491701234567@wa.example" as RemoteUserId), "+491701234567");
    assert.equal(connector.addressOf("alice@matrix.bridge.example" as RemoteUserId), undefined);
  });

  it("describes WhatsApp with the operator's ghost templates, provider name and country codes", function () {
    const settings = config({
      mode: "embedded",
      provider_id: "acme-chat",
      allowed_country_codes: ["49"],
    });
    const connector = createInteropConnector(
      {
        ...settings,
        appservice: { ...settings.appservice, ghost_localpart_template: "wa_{id}_x" },
      },
      callbacks,
      deps(),
    );
    const network = connector.describe();
    assert.equal(network.displayName, "WhatsApp");
    assert.equal(network.commandPrefix, "!wa");
    assert.equal(network.ghostLocalpartTemplate, "wa_{id}_x");
    assert.match(network.securityNotes.join("\n"), /<your number> · acme-chat/);
    const phoneField = { id: "phone", name: "Phone number", description: "" };
    assert.equal(network.refuseLoginValue?.(phoneField, "+491701234567"), undefined);
    assert.match(network.refuseLoginValue?.(phoneField, "+33612345678") ?? "", /\+49\./);
  });
});
