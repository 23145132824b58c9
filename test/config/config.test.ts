import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { parseConfig } from "../../src/config/load.js";
import { configuredNetwork } from "../../src/cli/network.js";
import { renderSample } from "../../src/config/sample.js";
import { EEA_COUNTRY_CODES } from "../../src/config/schema.js";
import { ConfigError } from "../../src/util/errors.js";
import { phoneNumber } from "../../src/util/ids.js";

const REQUIRED = "homeserver:\n  url: http://localhost:8008\n  domain: example.org\n";

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, "config.yaml", env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail("the config was accepted");
}

describe("configuration", function () {
  it("the committed config.sample.yaml is exactly what the schema renders", async function () {
    const committed = await readFile(new URL("../../config.sample.yaml", import.meta.url), "utf8");
    assert.equal(
      committed,
      renderSample(),
      "run `npm run config:sample` after changing the schema",
    );
  });

  it("the sample file is a valid config and every default is safe", function () {
    const config = parseConfig(renderSample(), "config.sample.yaml");
    assert.equal(config.database.type, "sqlite");
    assert.equal(config.appservice.bind_address, "127.0.0.1", "listens on loopback by default");
    assert.equal(config.metrics.enabled, false);
    assert.equal(config.interop.allow_insecure_media_on_loopback, false);
    assert.equal(config.permissions["*"], "none", "strangers get nothing by default");
    assert.deepEqual(config.interop.allowed_country_codes, [...EEA_COUNTRY_CODES]);
  });

  it("a minimal config with only the required keys gets every default", function () {
    const config = parseConfig(REQUIRED, "config.yaml");
    assert.equal(config.appservice.port, 29330);
    assert.equal(config.appservice.bot.localpart, "whatsappbot");
    assert.equal(config.interop.mode, "embedded");
    assert.equal(config.logging.level, "info");
  });

  it("a missing required key is named", function () {
    assert.deepEqual(problemsOf("homeserver:\n  url: http://x\n"), [
      "homeserver.domain: required, expected a string",
    ]);
    assert.deepEqual(problemsOf(""), ["homeserver: required, expected a mapping"]);
  });

  it("a wrong type is named with what was expected and what was found", function () {
    assert.deepEqual(problemsOf(`${REQUIRED}appservice:\n  port: "eighty"\n`), [
      'appservice.port: expected a number (got string "eighty")',
    ]);
  });

  it("an unknown key is an error, also when nested", function () {
    assert.deepEqual(problemsOf(`${REQUIRED}databse: {}\nlogging:\n  colour: true\n`).sort(), [
      "databse: unknown key",
      "logging.colour: unknown key",
    ]);
  });

  it("every problem is reported at once, one line each", function () {
    const problems = problemsOf(
      "homeserver:\n  url: ftp://x\n  domain: example.org\nappservice:\n  port: 70000\n" +
        "permissions:\n  '@bob:example.org': superuser\n",
    );
    assert.equal(problems.length, 3, problems.join("\n"));
    assert.ok(problems.some((p) => p.startsWith("homeserver.url:")));
    assert.ok(problems.some((p) => p.startsWith("appservice.port:")));
    assert.ok(problems.some((p) => p.startsWith('permissions."@bob:example.org":')));
    for (const problem of problems) assert.ok(!problem.includes("\n"));
  });

  it("external mode needs a component secret, which may come from the environment", function () {
    const external = `${REQUIRED}interop:\n  mode: external\n`;
    assert.deepEqual(problemsOf(external), [
      "interop.component_secret: required when interop.mode is external (or set MWI_COMPONENT_SECRET)",
    ]);
    const config = parseConfig(external, "config.yaml", { MWI_COMPONENT_SECRET: "s3cret" });
    assert.equal(config.interop.component_secret, "s3cret");
  });

  it("a database uri that does not fit the database type is refused", function () {
    assert.deepEqual(problemsOf(`${REQUIRED}database:\n  type: postgres\n  uri: ./x.db\n`), [
      "database.uri: expected a postgres:// URI when database.type is postgres",
    ]);
  });

  it("invalid YAML is one line with the position", function () {
    const problems = problemsOf("homeserver: [\n");
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? "", /not valid YAML: .*\(\d+:\d+\)/);
  });

  describe("ghost templates", function () {
    const templates = (localpart: string, displayName: string) =>
      `${REQUIRED}appservice:\n  ghost_localpart_template: ${localpart}\n` +
      `  ghost_display_name_template: "${displayName}"\n`;
    const address = phoneNumber("+491701234567");

    /** The ghost of +49 170 1234567 as the network the config runs names it. */
    function ghostOf(text: string): { localpart: string; displayName: string } {
      const network = configuredNetwork(parseConfig(text, "config.yaml"));
      return {
        localpart: network.ghostLocalpartTemplate.replace(
          "{id}",
          network.identifier.toLocalpart(address),
        ),
        displayName: network.ghostDisplayNameTemplate.replace(
          "{id}",
          network.identifier.format(address),
        ),
      };
    }

    it("{id} stands for the contact's address", function () {
      assert.deepEqual(ghostOf(templates("wa_{id}_x", "{id} on WA")), {
        localpart: "wa_491701234567_x",
        displayName: "+49 170 1234567 on WA",
      });
    });

    it("{phone} of a config file written before {id} still names the same ghosts", function () {
      assert.deepEqual(
        ghostOf(templates("wa_{phone}_x", "{phone} on WA")),
        ghostOf(templates("wa_{id}_x", "{id} on WA")),
      );
      assert.deepEqual(
        ghostOf(REQUIRED),
        ghostOf(templates("whatsapp_{phone}", "{phone} (WhatsApp)")),
      );
    });

    it("a template without a placeholder is refused, naming the key", function () {
      assert.deepEqual(problemsOf(templates("whatsapp", "{id}")), [
        "appservice.ghost_localpart_template: a localpart containing {id} once",
      ]);
      assert.deepEqual(problemsOf(templates("whatsapp_{id}", "WhatsApp contact")), [
        "appservice.ghost_display_name_template: a template containing {id}",
      ]);
      assert.deepEqual(problemsOf(templates("wa_{id}_{phone}", "{id}")), [
        "appservice.ghost_localpart_template: a localpart containing {id} once",
      ]);
    });
  });
});
