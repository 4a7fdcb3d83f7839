/** The Deno version rule, without a process (tests/deno_version_test.ts runs a real old Deno). */
import assert from "node:assert/strict";
import {
  checkOwnDeno,
  isSupported,
  OLDEST_DENO,
  parseDenoVersion,
  tooOldMessage,
} from "./deno_version.ts";

Deno.test("deno versions: read from `deno --version` and from Deno.version.deno", () => {
  assert.deepEqual(
    parseDenoVersion(
      "deno 2.5.6 (stable, release, x86_64-unknown-linux-gnu)\nv8 14.0.365.5-rusty\n",
    ),
    { major: 2, minor: 5, patch: 6 },
  );
  assert.deepEqual(parseDenoVersion("2.9.6"), { major: 2, minor: 9, patch: 6 });
  assert.deepEqual(parseDenoVersion("deno 2.8.0-rc.1 (rc, release, x)"), {
    major: 2,
    minor: 8,
    patch: 0,
  });
  assert.deepEqual(parseDenoVersion("2.10.0+1a2b3c4"), { major: 2, minor: 10, patch: 0 });
  assert.equal(parseDenoVersion("node v20.20.2"), undefined);
  assert.equal(parseDenoVersion(""), undefined);
});

Deno.test("deno versions: 2.7.0 is the oldest supported", () => {
  assert.deepEqual(OLDEST_DENO, { major: 2, minor: 7, patch: 0 });
  const supported = (text: string) => isSupported(parseDenoVersion(text)!);
  for (const old of ["1.46.3", "2.0.6", "2.5.6", "2.6.8", "1.99.99"]) {
    assert.equal(supported(old), false, old);
  }
  for (const ok of ["2.7.0", "2.7.14", "2.8.3", "2.9.6", "2.10.0", "3.0.0"]) {
    assert.equal(supported(ok), true, ok);
  }
});

Deno.test("deno versions: a supervisor on an old Deno is refused in one line naming both", () => {
  assert.throws(
    () => checkOwnDeno("2.5.6", () => "/opt/deno/bin/deno"),
    { message: "hotreload needs Deno 2.7 or newer; /opt/deno/bin/deno is 2.5.6" },
  );
  checkOwnDeno("2.7.0", () => "/opt/deno/bin/deno");
  checkOwnDeno(Deno.version.deno);
  // A version string nobody can read does not block a start.
  checkOwnDeno("unknown", () => "/x");
  assert.equal(
    tooOldMessage("/d/deno", "2.0.6", "HOTRELOAD_DENO"),
    "hotreload needs Deno 2.7 or newer; /d/deno (from HOTRELOAD_DENO) is 2.0.6",
  );
});
