/**
 * The sticky steering program on real sockets: 4 listeners in one reuseport
 * group (node:net servers in this process), the program attached, its table
 * filled as the supervisor fills it (buckets.ts); connections from many
 * client addresses, IPv4 and IPv6. Then one listener leaves the table, as
 * a draining worker does. Reports, per family, which listener took each
 * address's connections before and after. Runs in a network namespace as
 * root (tests/netns.ts); prints JSON on its last line.
 */
import net from "node:net";
import { Linux } from "../../src/handover/linux.ts";
import { SteeringObjects } from "../../src/handover/bpf.ts";
import { socketsOf } from "../../src/handover/listeners.ts";
import { assignBuckets } from "../../src/handover/buckets.ts";

const BUCKETS = 840;
const LISTENERS = 4;

async function sh(command: string): Promise<void> {
  const result = await new Deno.Command("sh", { args: ["-c", command] }).output();
  if (!result.success) throw new Error(`${command}: ${new TextDecoder().decode(result.stderr)}`);
}

/** Listens `LISTENERS` times on host:port with reusePort; `took` maps a client address to listeners. */
async function group(host: string, port: number) {
  const took = new Map<string, Set<number>>();
  const servers = await Promise.all(
    Array.from({ length: LISTENERS }, (_, index) =>
      new Promise<net.Server>((resolve) => {
        const server = net.createServer((socket) => {
          const from = socket.remoteAddress!.replace(/^::ffff:/, "");
          took.set(from, (took.get(from) ?? new Set()).add(index));
          socket.end(`${index}`);
        });
        server.listen({ port, host, reusePort: true }, () => resolve(server));
      })),
  );
  return { took, servers };
}

/** One connection from `localAddress`; resolves once the listener's answer came. */
function connect(host: string, port: number, localAddress: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    socket.on("data", () => {});
    socket.on("end", () => resolve());
    socket.on("error", reject);
  });
}

const opened = Linux.open();
if (typeof opened === "string") throw new Error(opened);
const linux: Linux = opened;

async function run(family: "ipv4" | "ipv6", host: string, sources: string[], port: number) {
  const { took, servers } = await group(host, port);
  // This process's listening sockets on the port, in the order they were opened.
  const pidfd = linux.pidfdOpen(Deno.pid);
  const fds: number[] = [];
  for (const { fd } of socketsOf(Deno.pid)) {
    const socket = linux.pidfdGetfd(pidfd, fd);
    if (linux.listener(socket)?.port === port) fds.push(socket);
    else linux.close(socket);
  }
  linux.close(pidfd);
  if (fds.length !== LISTENERS) throw new Error(`${family}: found ${fds.length} listeners`);
  const objects = SteeringObjects.create(linux, true);
  linux.attachReuseportProgram(fds[0], objects.progFd);
  fds.forEach((fd, key) => objects.setListener(key, fd));
  const fill = (table: number[]) => {
    table.forEach((key, i) => objects.setSlot(i + 1, key));
    objects.setSlot(0, table.length);
  };
  const all = [0, 1, 2, 3];
  const table = assignBuckets<number>([], all, BUCKETS);
  fill(table);
  const round = async () => {
    took.clear();
    for (let i = 0; i < 3; i++) {
      for (const source of sources) await connect(host, port, source);
    }
    return Object.fromEntries([...took].map(([from, set]) => [from, [...set]]));
  };
  const before = await round();
  // Listener 2 drains: out of the table, then out of the map.
  fill(assignBuckets(table, [0, 1, 3], BUCKETS));
  objects.clearListener(2);
  const after = await round();
  for (const server of servers) server.close();
  for (const fd of fds) linux.close(fd);
  objects.close();
  return { before, after };
}

await sh("ip -6 addr add fd00::1/128 dev lo nodad");
const v6Sources = Array.from({ length: 16 }, (_, i) => `fd00::${(i + 16).toString(16)}`);
for (const source of v6Sources) await sh(`ip -6 addr add ${source}/128 dev lo nodad`);
const v4Sources = Array.from({ length: 24 }, (_, i) => `127.0.0.${i + 10}`);

const port = 20000 + Math.floor(Math.random() * 20000);
const result = {
  ipv4: await run("ipv4", "127.0.0.1", v4Sources, port),
  ipv6: await run("ipv6", "fd00::1", v6Sources, port + 1),
};
console.log(JSON.stringify(result));
