import assert from "node:assert/strict";
import { storageRefusal } from "../../src/db/database.js";
import { isTransientError } from "../../src/util/errors.js";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("transient infrastructure errors", function () {
  it("a lost, refused or busy database connection is transient, also as a cause", function () {
    assert.ok(isTransientError(withCode("read ECONNRESET", "ECONNRESET")));
    assert.ok(isTransientError(withCode("terminating connection", "57P01")));
    assert.ok(isTransientError(withCode("database is locked", "SQLITE_BUSY")));
    assert.ok(
      isTransientError(
        new Error("ROLLBACK - Client has encountered a connection error and is not queryable"),
      ),
    );
    assert.ok(isTransientError(new Error("wrapped", { cause: withCode("x", "ECONNREFUSED") })));
  });

  it("a read-only or full database is waited out, and named as such", function () {
    const readOnly = withCode("cannot execute INSERT in a read-only transaction", "25006");
    assert.ok(isTransientError(readOnly));
    assert.equal(storageRefusal(readOnly), "read-only");
    assert.equal(
      storageRefusal(withCode("attempt to write a readonly database", "SQLITE_READONLY")),
      "read-only",
    );
    assert.equal(storageRefusal(withCode("could not extend file", "53100")), "full");
    assert.equal(storageRefusal(withCode("database or disk is full", "SQLITE_FULL")), "full");
  });

  it("programming and protocol errors are not transient", function () {
    assert.ok(!isTransientError(new TypeError("x is undefined")));
    assert.ok(!isTransientError(withCode("duplicate key value", "23505")));
    assert.equal(storageRefusal(withCode("duplicate key value", "23505")), undefined);
    assert.ok(!isTransientError("a string"));
  });
});
