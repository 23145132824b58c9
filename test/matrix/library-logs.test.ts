import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { Logger as LibraryLogger } from "matrix-appservice-bridge";
import { routeLibraryLogs } from "../../src/matrix/library-logs.js";
import { createLogger } from "../../src/util/log.js";

describe("matrix: the library's own logs", function () {
  it("go to the bridge's logger at debug, not to the console", async function () {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk
          .toString("utf8")
          .split("\n")
          .filter((l) => l !== "")) {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    const writes: string[] = [];
    const realWrite = process.stdout.write.bind(process.stdout);
    const realErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string) => writes.push(String(chunk)) > 0) as never;
    process.stderr.write = ((chunk: string) => writes.push(String(chunk)) > 0) as never;
    try {
      routeLibraryLogs(createLogger({ level: "debug", format: "json", destination }));
      new LibraryLogger("MatrixHttpClient").error("request failed: the secret body");
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.stdout.write = realWrite;
      process.stderr.write = realErr;
    }
    assert.deepEqual(
      writes.filter((w) => w.includes("the secret body")),
      [],
      "nothing on the console",
    );
    const entry = lines.find((l) => String(l["msg"]).includes("the secret body"));
    assert.ok(entry, "the line reached the bridge's logger");
    assert.equal(entry["level"], "debug");
    assert.equal(entry["component"], "matrix-library");
    assert.equal(entry["module"], "MatrixHttpClient");
  });

  it("are not formatted at all when the bridge's logger is above debug", async function () {
    const destination = new Writable({
      write(_chunk: Buffer, _encoding, done) {
        done();
      },
    });
    let formatted = 0;
    const payload = {
      [inspect.custom]: () => {
        formatted += 1;
        return "payload";
      },
    };
    try {
      routeLibraryLogs(createLogger({ level: "info", format: "json", destination }));
      new LibraryLogger("Intent").debug(payload);
      new LibraryLogger("Intent").info(payload);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(formatted, 0, "the library's lines were dropped before its formatters");
    } finally {
      // Later tests in this process get the library's logging back as at debug.
      routeLibraryLogs(createLogger({ level: "debug", format: "json", destination }));
    }
  });
});
