import assert from "node:assert/strict";
import { envFiles, envFilesAssign, envSyntaxError } from "./env_files.ts";

Deno.test("envFilesAssign: a key assigned on a line of its own, not one inside a quoted value; unreadable files assign nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/a.env`,
      'NOTE="spans\nGLIBC_TUNABLES=inside a quote"\n# GLIBC_TUNABLES=comment\n',
    );
    await Deno.writeTextFile(
      `${dir}/b.env`,
      "A=1\nexport GLIBC_TUNABLES=glibc.malloc.arena_max=2\n",
    );
    await Deno.symlink(`${dir}/b.env`, `${dir}/link.env`);
    assert.equal(envFilesAssign(["a.env"], dir, "GLIBC_TUNABLES"), false);
    assert.equal(envFilesAssign(["a.env", "b.env"], dir, "GLIBC_TUNABLES"), true);
    assert.equal(
      envFilesAssign([`${dir}/b.env`], "/nonexistent", "GLIBC_TUNABLES"),
      true,
      "an absolute path",
    );
    assert.equal(envFilesAssign(["b.env"], dir, "GLIBC"), false, "the whole key");
    assert.equal(envFilesAssign(["link.env", "missing.env"], dir, "GLIBC_TUNABLES"), false);
    assert.deepEqual(envFiles(["-A", "--env-file", "--env-file=b.env", "--env-file"]), [
      ".env",
      "b.env",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("envSyntaxError: the first broken line, counted from 1", () => {
  assert.equal(envSyntaxError('A=1\nB="two\nlines"\n\n# c\nexport D=4'), undefined);
  assert.equal(envSyntaxError("A=1\nnot an assignment"), "line 2: not KEY=value");
  assert.equal(envSyntaxError("A='open\nB=2"), "line 1: the ' quote opened for A is never closed");
  assert.equal(
    envSyntaxError('A=1\nB="open\nC=3'),
    'line 2: the " quote opened for B is never closed',
  );
});
