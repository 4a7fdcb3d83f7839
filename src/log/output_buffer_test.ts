import assert from "node:assert/strict";
import { OutputBuffer, sanitizeLine, utf8Length } from "./output_buffer.ts";

Deno.test("lines(n) gives the last n lines, oldest first", () => {
  const buffer = new OutputBuffer(10, 1_000_000);
  for (let i = 0; i < 4; i++) buffer.push(`line ${i}`);
  assert.deepEqual(buffer.lines(2), ["line 2", "line 3"]);
  assert.deepEqual(buffer.lines(100), ["line 0", "line 1", "line 2", "line 3"]);
  assert.deepEqual(buffer.lines(0), []);
});

Deno.test("the buffer keeps at most maxLines lines", () => {
  const buffer = new OutputBuffer(3, 1_000_000);
  for (let i = 0; i < 5000; i++) buffer.push(`line ${i}`);
  assert.deepEqual(buffer.lines(10), ["line 4997", "line 4998", "line 4999"]);
  assert.equal(buffer.dropped, 4997);
});

Deno.test("the buffer keeps at most maxBytes bytes, whatever the lines", () => {
  const buffer = new OutputBuffer(1000, 100, 1000);
  for (let i = 0; i < 50; i++) buffer.push("x".repeat(30));
  assert.ok(buffer.bytes <= 100, `${buffer.bytes} bytes kept`);
  assert.equal(buffer.lines(1000).length, 3);
});

Deno.test("a long line is cut and says so; a flood of them stays bounded", () => {
  const buffer = new OutputBuffer(5000, 64 * 1024, 1024);
  for (let i = 0; i < 200; i++) buffer.push("é".repeat(1_000_000));
  const [last] = buffer.lines(1);
  assert.match(last, /… \(\d+ more bytes cut\)$/);
  assert.ok(utf8Length(last) < 1100);
  assert.ok(buffer.bytes <= 64 * 1024);
});

Deno.test("binary and terminal controls are replaced; colours and tabs stay", () => {
  assert.equal(sanitizeLine("a\x00b\x07c\td"), "a\uFFFDb\uFFFDc\td");
  assert.equal(sanitizeLine("\x1b[31mred\x1b[0m"), "\x1b[31mred\x1b[0m");
  assert.equal(sanitizeLine("\x1b]0;title\x07x\x1b[2J"), "\uFFFD]0;title\uFFFDx\uFFFD[2J");
  assert.equal(sanitizeLine("one\rtwo"), "one\uFFFDtwo");
});

Deno.test("a pushed line ends at its first newline's place: one entry per push", () => {
  const buffer = new OutputBuffer();
  buffer.push("with newline\n");
  buffer.push("a\nb");
  assert.deepEqual(buffer.lines(2), ["with newline", "a\uFFFDb"]);
});

Deno.test("subscribe sees every later line until it unsubscribes", () => {
  const buffer = new OutputBuffer();
  buffer.push("before");
  const seen: string[] = [];
  const unsubscribe = buffer.subscribe((line) => seen.push(line));
  buffer.push("one");
  buffer.push("two\x00");
  unsubscribe();
  buffer.push("after");
  assert.deepEqual(seen, ["one", "two\uFFFD"]);
});

Deno.test("a listener that throws neither stops the push nor other listeners", () => {
  const buffer = new OutputBuffer();
  const seen: string[] = [];
  buffer.subscribe(() => {
    throw new Error("boom");
  });
  buffer.subscribe((line) => seen.push(line));
  buffer.push("x");
  assert.deepEqual(seen, ["x"]);
  assert.deepEqual(buffer.lines(1), ["x"]);
});
