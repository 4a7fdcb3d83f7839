import assert from "node:assert/strict";
import { register, registryDir, runningInstances } from "./registry.ts";
import { claimInstance } from "./instance_dir.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("registry: $XDG_RUNTIME_DIR/hotreload, else ~/.hotreload", () => {
  assert.equal(
    registryDir(env({ XDG_RUNTIME_DIR: "/run/user/1000", HOME: "/h" })),
    "/run/user/1000/hotreload",
  );
  assert.equal(registryDir(env({ HOME: "/home/ana" })), "/home/ana/.hotreload");
  assert.equal(
    registryDir(env({ XDG_RUNTIME_DIR: "", HOME: "/home/ana" })),
    "/home/ana/.hotreload",
  );
});

Deno.test("registry: a claimed instance is listed until it unregisters", async () => {
  const registry = await Deno.makeTempDir();
  const project = await Deno.makeTempDir();
  const claim = claimInstance(project, {
    name: "api",
    cwd: project,
    entry: "main.ts",
    workers: 2,
    graceMs: 1000,
    startedAt: new Date().toISOString(),
  });
  try {
    const { unregister, error } = register(claim.record, `${registry}/hotreload`);
    assert.equal(error, undefined);
    assert.deepEqual(runningInstances(`${registry}/hotreload`).map((r) => [r.name, r.pid]), [
      ["api", Deno.pid],
    ]);
    assert.equal(Deno.statSync(`${registry}/hotreload`).mode! & 0o777, 0o700);
    unregister();
    assert.deepEqual(runningInstances(`${registry}/hotreload`), []);
  } finally {
    claim.release();
    await Deno.remove(registry, { recursive: true });
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("registry: an entry its instance's own record does not confirm is removed", async () => {
  const registry = await Deno.makeTempDir();
  const project = await Deno.makeTempDir();
  try {
    // Our pid and start time, but no instance of that name runs in that directory.
    const claim = claimInstance(project, {
      name: "real",
      cwd: project,
      entry: "main.ts",
      workers: 1,
      graceMs: 0,
      startedAt: new Date().toISOString(),
    });
    const forged = { ...claim.record, name: "forged" };
    claim.release();
    register(forged, registry);
    assert.deepEqual(runningInstances(registry), []);
    assert.deepEqual([...Deno.readDirSync(registry)], []);
  } finally {
    await Deno.remove(registry, { recursive: true });
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("registry: a directory that is a link is refused, for reading and for writing", async () => {
  const base = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${base}/elsewhere`);
    await Deno.symlink(`${base}/elsewhere`, `${base}/hotreload`);
    assert.throws(() => runningInstances(`${base}/hotreload`), /is a symbolic link/);
    const { error } = register(
      {
        name: "x",
        pid: Deno.pid,
        startTime: 1,
        cwd: base,
        entry: "m.ts",
        workers: 1,
        graceMs: 0,
        startedAt: "",
      },
      `${base}/hotreload`,
    );
    assert.match(error ?? "", /is a symbolic link/);
    assert.deepEqual([...Deno.readDirSync(`${base}/elsewhere`)], []);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
