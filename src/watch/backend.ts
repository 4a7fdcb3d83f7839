/**
 * The automatic choice between inotify events and polling, as pure functions
 * over the text of `/proc/mounts` and the kernel release, so it can be tested
 * with sample data.
 *
 * @module
 */

/** One line of `/proc/mounts`. */
export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** Filesystem types where inotify does not see changes made elsewhere. */
const NO_INOTIFY_FS: ReadonlySet<string> = new Set([
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "smbfs",
  "9p",
  "vboxsf",
  "fuse",
]);

/** True for a filesystem type where inotify sees no (remote) changes. */
export function isNoInotifyFs(fsType: string): boolean {
  return NO_INOTIFY_FS.has(fsType) || fsType.startsWith("fuse.");
}

function unescapeMount(field: string): string {
  // /proc/mounts escapes space, tab, newline and backslash as \040 \011 \012 \134.
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse the text of `/proc/mounts` (or `/proc/self/mounts`). */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3) continue;
    out.push({ mountPoint: unescapeMount(f[1]), fsType: f[2] });
  }
  return out;
}

/** The mount an absolute path is on: the longest mount point that is a prefix of it. */
export function findMount(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint === "/" ? "/" : m.mountPoint.replace(/\/+$/, "");
    const inside = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    // A later line for the same mount point is mounted over the earlier one.
    if (inside && (best === undefined || mp.length >= best.mountPoint.length)) {
      best = { mountPoint: mp, fsType: m.fsType };
    }
  }
  return best;
}

/** Input of {@linkcode chooseBackend}. */
export interface BackendInput {
  /** Text of /proc/mounts ("" when unreadable or not Linux). */
  mounts: string;
  /** Text of /proc/sys/kernel/osrelease and/or /proc/version ("" when unknown). */
  osRelease?: string;
  /** Absolute path being watched. */
  path: string;
}

/** Outcome of {@linkcode chooseBackend}. */
export interface BackendDecision {
  backend: "events" | "poll";
  /** Why polling is needed; undefined when events are fine. */
  reason?: string;
}

/**
 * Decide whether inotify can be trusted for `path`: not under WSL, and not
 * on a network or virtual filesystem (longest matching mount point wins).
 */
export function chooseBackend(input: BackendInput): BackendDecision {
  const release = (input.osRelease ?? "").trim();
  if (/microsoft|(?<![a-z0-9])wsl/i.test(release)) {
    const first = release.split("\n")[0].trim();
    return {
      backend: "poll",
      reason: `running under WSL (${first}), where inotify misses changes made from Windows`,
    };
  }
  const mount = findMount(parseMounts(input.mounts), input.path);
  if (mount !== undefined && isNoInotifyFs(mount.fsType)) {
    return {
      backend: "poll",
      reason: `${input.path} is on a ${mount.fsType} filesystem, where inotify sees no changes`,
    };
  }
  return { backend: "events" };
}

/** Read what {@linkcode chooseBackend} needs from this machine ("" where unavailable). */
export function readSystemInfo(): { mounts: string; osRelease: string } {
  const read = (p: string): string => {
    try {
      return Deno.readTextFileSync(p);
    } catch {
      return "";
    }
  };
  if (Deno.build.os !== "linux") return { mounts: "", osRelease: "" };
  return {
    mounts: read("/proc/self/mounts") || read("/proc/mounts"),
    osRelease: `${read("/proc/sys/kernel/osrelease")}\n${read("/proc/version")}`.trim(),
  };
}
