/** Unit tests of the pure pieces: argument splitting, flags, backoff, frames, lines, rollouts. */
import assert from "node:assert/strict";
import { splitRunArgv } from "../src/cli/run_args.ts";
import { denoFlagArity } from "../src/config/deno_flags.ts";
import { Backoff } from "../src/supervisor/backoff.ts";
import {
  checkChildMessage,
  decodeFrame,
  encodeFrame,
  encodeHandshake,
} from "../src/runtime/protocol.ts";
import { LineTail } from "../src/child/tail.ts";
import { forEachLine, LINE_CUT_MARK } from "../src/runtime/lines.ts";
import { checkArguments } from "../src/supervisor/type_check.ts";
import { lastWords } from "../src/supervisor/describe.ts";

Deno.test("run arguments: options and Deno flags on both sides of the entry, app args after --", () => {
  const split = splitRunArgv([
    "-A",
    "--import-map",
    "map.json",
    "main.ts",
    "--workers",
    "4",
    "--env-file=.env",
    "-c",
    "deno.json",
    "-p8000",
    "--",
    "--workers",
    "x",
  ]);
  assert.equal(split.entry, "main.ts");
  // Values are attached, so "-1" reaches our range check as a value.
  assert.deepEqual(split.ours, ["--workers=4", "-p8000"]);
  assert.deepEqual(split.denoFlags, [
    "-A",
    "--import-map",
    "map.json",
    "--env-file=.env",
    "-c",
    "deno.json",
  ]);
  assert.deepEqual(split.appArgs, ["--workers", "x"]);
});

Deno.test("deno flags: arity of known flags, unknown ones undefined, refused ones throw", () => {
  assert.equal(denoFlagArity("--allow-net"), "optional");
  assert.equal(denoFlagArity("--allow-net=localhost"), "optional");
  assert.equal(denoFlagArity("--unstable-kv"), "none");
  assert.equal(denoFlagArity("--import-map"), "required");
  assert.equal(denoFlagArity("-A"), "none");
  assert.equal(denoFlagArity("--allow-everything"), undefined);
  assert.equal(denoFlagArity("-Z"), undefined);
  assert.throws(() => denoFlagArity("--hmr"), /not supported/);
});

Deno.test("backoff doubles from 100 ms, caps at 15 s, resets after 30 s of uptime", () => {
  const backoff = new Backoff();
  const delays = Array.from({ length: 10 }, () => backoff.failed(50));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000]);
  assert.equal(backoff.failed(30_000), 100, "a stable run forgets earlier failures");
  assert.equal(backoff.failed(10), 200);
});

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
  const bytes = encodeHandshake({ nonce: "abc", supervisor: 42, settings });
  const text = new TextDecoder().decode(bytes);
  const newline = text.indexOf("\n");
  const json = bytes.subarray(new TextEncoder().encode(text.slice(0, newline + 1)).length);
  assert.equal(Number(text.slice(0, newline)), json.length);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(json)), {
    nonce: "abc",
    supervisor: 42,
    settings,
  });
});

Deno.test("line splitting keeps a last partial line and multi-byte characters split across chunks", async () => {
  const bytes = new TextEncoder().encode("one\ntwo é\r\nthree");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // Split inside the two-byte "é".
      controller.enqueue(bytes.slice(0, 9));
      controller.enqueue(bytes.slice(9));
      controller.close();
    },
  });
  const lines: string[] = [];
  await forEachLine(stream, (line) => lines.push(line));
  assert.deepEqual(lines, ["one", "two é", "three"]);
  const tail = new LineTail(2);
  for (const line of lines) tail.push(line);
  assert.deepEqual(tail.lines(), ["two é", "three"]);
});

Deno.test("an over-long line is cut into marked pieces, and a failing callback never stops reading", async () => {
  const max = 1024;
  // 10 pieces' worth of one line, fed in small chunks, then a normal line.
  const long = "é".repeat(5 * max); // 2 bytes each: 10 × max bytes
  const bytes = new TextEncoder().encode(`${long}\nafter\n`);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 333) controller.enqueue(bytes.slice(at, at + 333));
      controller.close();
    },
  });
  const lines: string[] = [];
  let errors = 0;
  await forEachLine(stream, (line) => {
    lines.push(line);
    if (lines.length === 1) throw new Error("a broken sink");
  }, { maxLineBytes: max, onError: () => errors++ });
  assert.equal(errors, 1);
  assert.equal(lines.length, 11, "ten pieces and the next line");
  for (const piece of lines.slice(0, 9)) {
    assert.ok(piece.endsWith(LINE_CUT_MARK));
    assert.ok(new TextEncoder().encode(piece.slice(0, -LINE_CUT_MARK.length)).length <= max);
  }
  assert.ok(!lines[9].endsWith(LINE_CUT_MARK), "the last piece is not marked");
  assert.equal(lines.map((l) => l.replace(LINE_CUT_MARK, "")).slice(0, 10).join(""), long);
  assert.equal(lines[10], "after");
});

Deno.test("--check: deno check gets the entry and the flags that shape resolution", () => {
  assert.equal(checkArguments(["-A", "--import-map", "m.json"], "main.ts"), undefined);
  assert.deepEqual(
    checkArguments(
      ["-A", "--check", "--import-map", "m.json", "-c", "deno.json", "--unstable-kv", "--env-file"],
      "main.ts",
    ),
    ["--import-map", "m.json", "-c", "deno.json", "--unstable-kv", "main.ts"],
  );
  assert.deepEqual(checkArguments(["--check=all", "--lock=x.lock"], "a.ts"), [
    "--all",
    "--lock=x.lock",
    "a.ts",
  ]);
});

Deno.test("the crash report starts at the first error among the last lines", () => {
  assert.deepEqual(
    lastWords([
      "booting",
      "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
      "    at file:///main.ts:1:7",
      "",
      "error: Type checking failed.",
      "",
      "Stack backtrace:",
      "   0: <unknown>",
    ]),
    [
      "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
      "    at file:///main.ts:1:7",
      "",
      "error: Type checking failed.",
    ],
  );
  assert.deepEqual(lastWords(["a", "b"]), ["a", "b"]);
});

Deno.test("forEachLine: a line-start byte ends the text before it, so a frame after a long line is never cut", async () => {
  const long = "x".repeat(65_530);
  const frame = "\u0000hotreload:nonce:{}";
  const stream = ReadableStream.from([new TextEncoder().encode(`${long}${frame}\nafter\n`)]);
  const lines: string[] = [];
  await forEachLine(stream, (line) => lines.push(line), { lineStart: 0 });
  assert.deepEqual(lines, [long, frame, "after"]);
  // Without it, the frame is cut (what a hostile app's output could aim at).
  const plain: string[] = [];
  const again = ReadableStream.from([new TextEncoder().encode(`${long}${frame}\n`)]);
  await forEachLine(again, (line) => plain.push(line));
  assert.ok(plain.length === 2 && !plain.includes(frame));
});
