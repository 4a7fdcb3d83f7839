/** fifo.ts with a real FIFO: while it is held, opening it for reading no longer waits. */
import assert from "node:assert/strict";
import { FifoGuard } from "./fifo.ts";

/**
 * Opens `path` for reading in a shell, as Deno's watcher would; true when the
 * open returned within `seconds` (a blocked open is given up then).
 */
async function opens(path: string, seconds: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("timeout", {
    args: [String(seconds), "sh", "-c", `exec 3<"${path}"; echo opened`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout).trim() === "opened";
}

Deno.test("fifo guard: a FIFO is held while it is one, let go when it is replaced", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/.env`;
  const guard = new FifoGuard();
  try {
    await Deno.writeTextFile(fifo, "X=1\n");
    assert.equal(guard.check(fifo), false, "a regular file is left alone");
    await Deno.remove(fifo);
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    assert.equal(await opens(fifo, 1), false, "unheld, an open for reading waits for a writer");
    assert.equal(guard.check(fifo), true, "held, said once");
    assert.equal(guard.check(fifo), false);
    assert.equal(await opens(fifo, 10), true, "held, an open for reading returns");
    await Deno.remove(fifo);
    await Deno.writeTextFile(fifo, "X=2\n");
    assert.equal(guard.check(fifo), false, "replaced by a file: let go");
  } finally {
    guard.close();
    await Deno.remove(dir, { recursive: true });
  }
});
