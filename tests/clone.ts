/** A fresh clone of this repository, for the tests that run what a newcomer runs. */
import { ROOT } from "./helpers.ts";

/** Copies the files git tracks, or would track, as the working tree has them. */
export async function cloneInto(dir: string): Promise<number> {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!listed.success) {
    throw new Error(`git ls-files failed: ${new TextDecoder().decode(listed.stderr).trim()}`);
  }
  const files = new TextDecoder().decode(listed.stdout).split("\0").filter(Boolean);
  let copied = 0;
  for (const file of files) {
    let info;
    try {
      info = await Deno.lstat(`${ROOT}/${file}`);
    } catch {
      continue; // deleted in the working tree, not yet in the index
    }
    if (!info.isFile) continue;
    const target = `${dir}/${file}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}/${file}`, target);
    copied++;
  }
  return copied;
}
