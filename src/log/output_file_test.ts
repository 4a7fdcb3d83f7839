import assert from "node:assert/strict";
import { OutputBuffer } from "./output_buffer.ts";
import { attachOutputFile, lastLinesOfFile, OUTPUT_FILE } from "./output_file.ts";

Deno.test("output file: every line pushed from attach on; rotated at its bound, one old file kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const buffer = new OutputBuffer();
    buffer.push("before attach");
    const detach = attachOutputFile(dir, buffer, 1000);
    for (let i = 0; i < 100; i++) buffer.push(`line ${i} ${"x".repeat(40)}`);
    detach();
    buffer.push("after detach");
    const path = `${dir}/${OUTPUT_FILE}`;
    assert.ok(Deno.statSync(path).size <= 1000);
    assert.ok(Deno.statSync(`${path}.1`).size <= 1000);
    const all = lastLinesOfFile(path, 1000)!;
    assert.equal(all.at(-1), `line 99 ${"x".repeat(40)}`);
    // The current file and the old one, in order, nothing before attach nor after detach.
    const numbers = all.map((line) => Number(line.split(" ")[1]));
    assert.deepEqual(numbers, numbers.toSorted((a, b) => a - b));
    assert.ok(!all.includes("before attach") && !all.includes("after detach"));
    assert.deepEqual(lastLinesOfFile(path, 2)!.map((l) => l.split(" ")[1]), ["98", "99"]);
    assert.deepEqual(lastLinesOfFile(path, 0), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("output file: a link planted at its path is replaced, never written through", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/victim`, "untouched\n");
    await Deno.symlink(`${dir}/victim`, `${dir}/${OUTPUT_FILE}`);
    const buffer = new OutputBuffer();
    const detach = attachOutputFile(dir, buffer);
    buffer.push("hello");
    detach();
    assert.equal(await Deno.readTextFile(`${dir}/victim`), "untouched\n");
    assert.ok(Deno.lstatSync(`${dir}/${OUTPUT_FILE}`).isFile);
    assert.deepEqual(lastLinesOfFile(`${dir}/${OUTPUT_FILE}`, 5), ["hello"]);
    // Nor read through one.
    await Deno.remove(`${dir}/${OUTPUT_FILE}`);
    await Deno.symlink(`${dir}/victim`, `${dir}/${OUTPUT_FILE}`);
    assert.equal(lastLinesOfFile(`${dir}/${OUTPUT_FILE}`, 5), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
