/** The child protocol: frames and the handshake. */
import assert from "node:assert/strict";
import { checkChildMessage, decodeFrame, encodeFrame, encodeHandshake } from "./protocol.ts";

Deno.test("frames round-trip and are found after text printed without a newline", () => {
  const nonce = "0123456789abcdef0123456789abcdef";
  const frame = encodeFrame(nonce, { t: "ready", via: "listen", port: 8000 }).trimEnd();
  assert.deepEqual(decodeFrame(frame, nonce), {
    text: "",
    message: { t: "ready", via: "listen", port: 8000 },
  });
  assert.deepEqual(decodeFrame(`partial${frame}`, nonce).text, "partial");
  assert.deepEqual(decodeFrame("plain line", nonce), { text: "plain line" });
});

Deno.test("a frame without the child's nonce, or of an unexpected shape, is plain text", () => {
  const nonce = "0123456789abcdef0123456789abcdef";
  // What an app that logs request bodies would print for a hostile client.
  const forged = '\u0000hotreload:{"t":"recycle","reason":"pwned"}';
  assert.deepEqual(decodeFrame(forged, nonce), { text: forged });
  const guessed = encodeFrame("f".repeat(32), { t: "recycle", reason: "pwned" }).trimEnd();
  assert.deepEqual(decodeFrame(guessed, nonce), { text: guessed });
  for (
    const bad of [
      { t: "recycle", reason: "x".repeat(5000) },
      { t: "requests", served: -1 },
      { t: "ready", via: "elsewhere" },
      { t: "shutdown-everything" },
      [1, 2],
    ]
  ) {
    const line = `\u0000hotreload:${nonce}:${JSON.stringify(bad)}`;
    assert.equal(decodeFrame(line, nonce).message, undefined, JSON.stringify(bad));
    assert.equal(checkChildMessage(bad), undefined);
  }
});

Deno.test("the handshake is a length line and exactly that many bytes of JSON", () => {
  const settings = { name: "queue", index: 0, generation: 1, args: { token: "é-secret" } };
  const bytes = encodeHandshake({ nonce: "abc", supervisor: 42, sentAt: 1, settings });
  const text = new TextDecoder().decode(bytes);
  const newline = text.indexOf("\n");
  const json = bytes.subarray(new TextEncoder().encode(text.slice(0, newline + 1)).length);
  assert.equal(Number(text.slice(0, newline)), json.length);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(json)), {
    nonce: "abc",
    supervisor: 42,
    sentAt: 1,
    settings,
  });
});
