import assert from "node:assert/strict";
import { createTestHomeserver, type HomeserverProfile, type TestHomeserver } from "./index.js";
import { api } from "./testHelpers.js";

const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001", "hex");

async function upload(
  hs: TestHomeserver,
  token: string,
  data: Buffer,
  path = "/_matrix/media/v3/upload",
): Promise<string> {
  const answer = await api(hs.url, "POST", `${path}?filename=dot.png`, {
    token,
    rawBody: data,
    contentType: "image/png",
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  const uri = answer.json["content_uri"];
  assert.equal(typeof uri, "string");
  return uri as string;
}

function mediaPath(uri: string): string {
  const match = /^mxc:\/\/([^/]+)\/(.+)$/.exec(uri);
  assert.ok(match, `not an mxc uri: ${uri}`);
  return `${match[1]}/${match[2]}`;
}

async function download(
  url: string,
  token?: string,
): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const response = await fetch(
    url,
    token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
  );
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    headers: response.headers,
  };
}

describe("test homeserver media repository", function () {
  let hs: TestHomeserver | undefined;
  afterEach(async function () {
    await hs?.stop();
    hs = undefined;
  });

  const start = async (profile: HomeserverProfile, maxUploadBytes?: number): Promise<string> => {
    hs = createTestHomeserver({
      serverName: "hs.test",
      profile,
      ...(maxUploadBytes === undefined ? {} : { maxUploadBytes }),
    });
    await hs.start();
    return hs.registerUser("alice").accessToken;
  };

  for (const profile of ["synapse-1.67", "synapse-1.92", "spec"] as const) {
    it(`${profile}: legacy r0 and v3 upload and download return the bytes with their type`, async function () {
      const token = await start(profile);
      const server = hs as TestHomeserver;
      for (const version of ["r0", "v3"]) {
        const uri = await upload(server, token, PNG, `/_matrix/media/${version}/upload`);
        assert.match(uri, /^mxc:\/\/hs\.test\//);
        const got = await download(
          `${server.url}/_matrix/media/${version}/download/${mediaPath(uri)}`,
        );
        assert.equal(got.status, 200);
        assert.deepEqual(got.body, PNG);
        assert.equal(got.headers.get("content-type"), "image/png");
      }
      const config = await api(server.url, "GET", "/_matrix/media/v3/config", { token });
      assert.equal(config.json["m.upload.size"], 50 * 1024 * 1024);
    });
  }

  it("spec: authenticated download needs a token and serves the same bytes", async function () {
    const token = await start("spec");
    const server = hs as TestHomeserver;
    const uri = await upload(server, token, PNG);
    const url = `${server.url}/_matrix/client/v1/media/download/${mediaPath(uri)}`;
    const anonymous = await download(url);
    assert.equal(anonymous.status, 401);
    assert.equal(
      (JSON.parse(anonymous.body.toString()) as Record<string, unknown>)["errcode"],
      "M_MISSING_TOKEN",
    );
    const authed = await download(url, token);
    assert.equal(authed.status, 200);
    assert.deepEqual(authed.body, PNG);
    const named = await download(`${url}/renamed.png`, token);
    assert.match(named.headers.get("content-disposition") ?? "", /filename\*=utf-8''renamed\.png/);
    const config = await api(server.url, "GET", "/_matrix/client/v1/media/config", { token });
    assert.equal(config.json["m.upload.size"], 50 * 1024 * 1024);
    const unknown = await download(
      `${server.url}/_matrix/client/v1/media/download/hs.test/nope`,
      token,
    );
    assert.equal(unknown.status, 404);
  });

  for (const [profile, status] of [
    ["synapse-1.67", 400],
    ["synapse-1.92", 404],
  ] as const) {
    it(`${profile}: authenticated media is missing with HTTP ${status} M_UNRECOGNIZED`, async function () {
      const token = await start(profile);
      const server = hs as TestHomeserver;
      const uri = await upload(server, token, PNG);
      for (const path of [
        `/_matrix/client/v1/media/download/${mediaPath(uri)}`,
        "/_matrix/client/v1/media/config",
      ]) {
        const answer = await api(server.url, "GET", path, { token });
        assert.deepEqual([answer.status, answer.json["errcode"]], [status, "M_UNRECOGNIZED"]);
      }
    });
  }

  it("synapse-current: new media is reachable only through the authenticated endpoints", async function () {
    const token = await start("synapse-current");
    const server = hs as TestHomeserver;
    const uri = await upload(server, token, PNG);
    const legacy = await download(
      `${server.url}/_matrix/media/v3/download/${mediaPath(uri)}`,
      token,
    );
    assert.equal(legacy.status, 404);
    assert.equal(JSON.parse(legacy.body.toString())["errcode"], "M_NOT_FOUND");
    const authed = await download(
      `${server.url}/_matrix/client/v1/media/download/${mediaPath(uri)}`,
      token,
    );
    assert.equal(authed.status, 200);
    assert.deepEqual(authed.body, PNG);
    const config = await api(server.url, "GET", "/_matrix/client/v1/media/config", { token });
    assert.equal(config.status, 200);
  });

  it("an upload above the size cap answers 413 M_TOO_LARGE", async function () {
    const token = await start("spec", 1024);
    const answer = await api((hs as TestHomeserver).url, "POST", "/_matrix/media/v3/upload", {
      token,
      rawBody: Buffer.alloc(2048, 1),
    });
    assert.deepEqual([answer.status, answer.json["errcode"]], [413, "M_TOO_LARGE"]);
  });

  it("an upload without a token answers 401 M_MISSING_TOKEN", async function () {
    await start("spec");
    const answer = await api((hs as TestHomeserver).url, "POST", "/_matrix/media/v3/upload", {
      rawBody: PNG,
    });
    assert.deepEqual([answer.status, answer.json["errcode"]], [401, "M_MISSING_TOKEN"]);
  });

  it("spec with frozen legacy media refuses unauthenticated downloads", async function () {
    hs = createTestHomeserver({ serverName: "hs.test", profile: "spec", freezeLegacyMedia: true });
    await hs.start();
    const token = hs.registerUser("alice").accessToken;
    const uri = await upload(hs, token, PNG);
    const legacy = await download(`${hs.url}/_matrix/media/v3/download/${mediaPath(uri)}`);
    assert.equal(legacy.status, 404);
    const authed = await download(
      `${hs.url}/_matrix/client/v1/media/download/${mediaPath(uri)}`,
      token,
    );
    assert.equal(authed.status, 200);
  });
});
