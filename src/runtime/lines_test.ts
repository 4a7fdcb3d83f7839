/** Byte streams into lines: partial lines, multi-byte characters, cut long lines, frames. */
import assert from "node:assert/strict";
import { forEachLine, LINE_CUT_MARK } from "./lines.ts";
import { LineTail } from "../child/tail.ts";

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
