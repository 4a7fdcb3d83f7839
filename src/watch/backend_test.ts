/** Which backend watches a path: the filesystem under it (/proc/mounts), WSL. */
import assert from "node:assert/strict";
import { chooseBackend, findMount, parseMounts } from "./backend.ts";

const SAMPLE_MOUNTS = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
//fileserver/share /mnt/share cifs rw,relatime,vers=3.1.1 0 0
server:/export /mnt/nfs nfs4 rw,relatime,vers=4.2 0 0
sshfs#me@host: /home/me/remote fuse.sshfs rw,nosuid,nodev 0 0
C:\\134 /mnt/c 9p rw,noatime 0 0
none /media/sf_shared vboxsf rw 0 0
/dev/sdb1 /mnt/share/local ext4 rw 0 0
/dev/sdc1 /mnt/with\\040space nfs rw 0 0
`;

Deno.test("chooseBackend: longest mount prefix decides", () => {
  const mounts = parseMounts(SAMPLE_MOUNTS);
  assert.equal(findMount(mounts, "/mnt/share/x")?.fsType, "cifs");
  assert.equal(findMount(mounts, "/mnt/share/local/x")?.fsType, "ext4");
  assert.equal(findMount(mounts, "/mnt/shared")?.fsType, "ext4"); // not a prefix at a "/" boundary
  assert.equal(findMount(mounts, "/mnt/with space/app")?.fsType, "nfs");
  const decide = (path: string) =>
    chooseBackend({ mounts: SAMPLE_MOUNTS, osRelease: "6.1.0-18-amd64", path });
  assert.deepEqual(decide("/mnt/share"), {
    backend: "poll",
    reason: "/mnt/share is on a cifs filesystem, where inotify sees no changes",
  });
  assert.equal(
    decide("/mnt/nfs/proj").reason,
    "/mnt/nfs/proj is on a nfs4 filesystem, where inotify sees no changes",
  );
  assert.equal(decide("/home/me/remote/p").reason?.includes("fuse.sshfs"), true);
  assert.equal(decide("/mnt/c/Users/me").reason?.includes("9p"), true);
  assert.equal(decide("/media/sf_shared/app").reason?.includes("vboxsf"), true);
  assert.deepEqual(decide("/mnt/share/local/app"), { backend: "events" });
  assert.deepEqual(decide("/tmp/app"), { backend: "events" });
  assert.deepEqual(decide("/home/me/app"), { backend: "events" });
  assert.deepEqual(chooseBackend({ mounts: "", path: "/x" }), { backend: "events" });
});

Deno.test("chooseBackend: a later mount over the same point wins", () => {
  const text = "a /srv ext4 rw 0 0\nb /srv nfs rw 0 0\n";
  assert.equal(chooseBackend({ mounts: text, path: "/srv/app" }).backend, "poll");
  const text2 = "b /srv nfs rw 0 0\na /srv ext4 rw 0 0\n";
  assert.equal(chooseBackend({ mounts: text2, path: "/srv/app" }).backend, "events");
});

Deno.test("chooseBackend: WSL", () => {
  for (const rel of ["5.15.153.1-microsoft-standard-WSL2", "4.4.0-19041-Microsoft"]) {
    const d = chooseBackend({
      mounts: "/dev/sdc / ext4 rw 0 0",
      osRelease: rel,
      path: "/home/me/app",
    });
    assert.equal(d.backend, "poll");
    assert.match(
      d.reason ?? "",
      /^running under WSL \(.*\), where inotify misses changes made from Windows$/,
    );
  }
  const aws = chooseBackend({
    mounts: "",
    osRelease: "6.1.0-1-aws (builder@awslinux)",
    path: "/a",
  });
  assert.equal(aws.backend, "events");
});
