/** Which failed requests count as the kernel's handshake race (tests/load.ts). */
import assert from "node:assert/strict";
import { beyondHandshakeRaces, handshakeReset, seenOf, unexplained } from "./load.ts";

/** As CI printed it: the client's connect failed with a reset. */
const RACE = "fetch failed Error: error sending request for url (http://127.0.0.1:40371/): " +
  "client error (Connect): tcp connect error: Connection reset by peer (os error 104)";
/** Failures that are something else: a closed or reset connection after connect, a refusal. */
const OTHERS = [
  "fetch failed Error: error sending request for url (http://127.0.0.1:37167/): client error " +
  "(SendRequest): connection closed before message completed",
  "fetch failed Error: Connection reset by peer (os error 104)",
  "fetch failed Error: error sending request for url (http://127.0.0.1:1/): client error " +
  "(Connect): tcp connect error: Connection refused (os error 111)",
  "status 502",
];

Deno.test("handshakeReset: only a connect that failed with a reset", () => {
  assert.equal(handshakeReset(RACE), true);
  for (const other of OTHERS) assert.equal(handshakeReset(other), false, other);
});

Deno.test("beyondHandshakeRaces / unexplained: only the allowed number of resets is forgiven", () => {
  assert.equal(beyondHandshakeRaces([RACE], 1), 0);
  assert.equal(beyondHandshakeRaces([RACE, RACE], 1), 1);
  assert.equal(beyondHandshakeRaces([RACE], 0), 1, "steered: none forgiven");
  assert.equal(beyondHandshakeRaces([RACE, ...OTHERS], 1), OTHERS.length);
  const seen = seenOf({ ok: 10, failures: [RACE, OTHERS[0]] });
  assert.deepEqual(seen, { ok: 10, failed: 2, races: 1, sample: [RACE, OTHERS[0]] });
  assert.equal(unexplained(seen, 1), 1);
});
