/** Stat probes: statx through FFI (by name, through held descriptors) against Deno.statSync. */
import assert from "node:assert/strict";
import { DIR, FILE, NONE, SIG_LEN, StatProber, StatxProber } from "./probe.ts";

Deno.test("statx probe: by name and through held descriptors, agreeing with Deno.statSync", async () => {
  const p = StatxProber.load();
  assert.ok(p, "statx via FFI should load on Linux with -A");
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const heldBefore = p.held;
  try {
    Deno.writeTextFileSync(`${dir}/f.ts`, "hello");
    Deno.mkdirSync(`${dir}/sub`);
    const sig = new Float64Array(SIG_LEN);
    const h = p.openDir(p.dirKey(dir), sig);
    assert.ok(h >= 0);
    assert.equal(sig[0] + sig[1] * 2 ** 32, Deno.statSync(dir).ino);
    const key = p.entryKey(dir, "f.ts");
    assert.equal(p.statAt(h, key, sig), FILE);
    const st = Deno.statSync(`${dir}/f.ts`);
    assert.equal(sig[0] + sig[1] * 2 ** 32, st.ino);
    assert.equal(sig[2], 5);
    assert.equal(Math.floor(p.mtimeMs(sig)), st.mtime!.getTime());
    // Deno.statSync gives ctime in whole seconds; statx gives nanoseconds.
    assert.equal(Math.floor(p.ctimeMs(sig, 0) / 1000) * 1000, st.ctime!.getTime());
    const pure = new Float64Array(SIG_LEN);
    new StatProber().statAt(0, `${dir}/f.ts`, pure);
    assert.equal(new StatProber().ctimeMs(pure, 0), Infinity, "whole seconds: unknown");
    assert.equal(p.statAt(h, p.entryKey(dir, "missing.ts"), sig), NONE);
    assert.equal(p.statAt(h, p.entryKey(dir, "sub"), sig), DIR);
    assert.equal(p.openDir(p.dirKey(`${dir}/f.ts`), sig), -1, "a file is not a directory");

    const fd = p.hold(h, key, false);
    assert.ok(fd >= 0);
    assert.equal(p.held, heldBefore + 1);
    const before = Date.now();
    Deno.writeTextFileSync(`${dir}/f.ts`, "!", { append: true });
    const after = Date.now();
    assert.equal(p.statHeld(fd, sig), FILE);
    assert.equal(sig[2], 6, "an in-place edit shows through the descriptor");
    // The kernel stamps ctime from a coarse clock, up to a tick behind Date.now().
    const ctime = p.ctimeMs(sig, 0);
    assert.ok(ctime >= before - 20 && ctime <= after + 1, `ctime ${ctime} vs ${before}..${after}`);
    Deno.writeTextFileSync(`${dir}/g.ts`, "replacement");
    Deno.renameSync(`${dir}/g.ts`, `${dir}/f.ts`);
    assert.equal(p.statHeld(fd, sig), NONE, "the replaced inode has no link left");
    assert.equal(p.statAt(h, key, sig), FILE);
    assert.equal(sig[2], 11, "by name sees the new file");
    p.release(fd);
    assert.equal(p.held, heldBefore);
    p.closeDir(h);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
