import assert from "node:assert/strict";
import { tunesMalloc } from "./malloc_tunables.ts";

const at = (denoFlags: string[], cwd = "/nonexistent") => ({ denoFlags, cwd });

Deno.test("tunesMalloc: where the preload can remove the variable, or nothing of the app can see it", () => {
  // The preload can remove it.
  for (
    const flags of [["-A"], ["--allow-all"], ["--allow-env"], ["-E"], [
      "-N",
      "--allow-env=PORT,GLIBC_TUNABLES",
    ], ["-E=GLIBC_*"]]
  ) {
    assert.equal(tunesMalloc({}, at(flags)), true, flags.join(" "));
  }
  // The app can read none of it and starts no process.
  for (
    const flags of [[], ["-N"], ["-N", "--allow-env=PORT"], [
      "--allow-env",
      "--deny-env=GLIBC_TUNABLES",
      "-N",
    ]]
  ) {
    assert.equal(tunesMalloc({}, at(flags)), true, flags.join(" ") || "no flags");
  }
  // It could not be removed, and a process the app starts would inherit it.
  for (
    const flags of [
      ["--allow-env=PORT", "--allow-run=sh"],
      ["--allow-ffi"],
      ["-A", "--deny-env=GLIBC_TUNABLES"],
      ["-A", "--deny-env"],
      ["-A", "--ignore-env=GLIBC_TUNABLES"],
      ["--allow-env=GLIBC", "--allow-run"],
      ["-P"],
      ["--permission-set=server", "-N"],
    ]
  ) {
    assert.equal(tunesMalloc({}, at(flags)), false, flags.join(" "));
  }
});

Deno.test("tunesMalloc: a GLIBC_TUNABLES of the user's, even empty, in the environment or an env file, is left as it is", async () => {
  assert.equal(tunesMalloc({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }, at(["-A"])), false);
  assert.equal(
    tunesMalloc({ GLIBC_TUNABLES: "" }, at(["-A"])),
    false,
    "empty: the way to turn it off",
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.env`, "PORT=1\nGLIBC_TUNABLES=\n");
    await Deno.writeTextFile(`${dir}/other.env`, "PORT=1\n");
    assert.equal(tunesMalloc({}, at(["-A", "--env-file=app.env"], dir)), false);
    assert.equal(tunesMalloc({}, at(["-A", "--env-file=other.env"], dir)), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
