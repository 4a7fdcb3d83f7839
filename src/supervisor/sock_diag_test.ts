/** Counting established connections over netlink, against /proc, on real sockets. */
import assert from "node:assert/strict";
import { establishedInodes } from "./sock_diag.ts";
import { procEstablishedInodes } from "./port_owners.ts";
import { socketsOf } from "../handover/listeners.ts";

Deno.test({
  name: "sock_diag finds the established sockets on a port, IPv4 and IPv6, as /proc lists them",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const v6 = Deno.listen({ hostname: "::1", port: 0 });
    const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    try {
      for (
        const [listener, hostname, count] of [[v4, "127.0.0.1", 5], [v6, "::1", 3], [
          other,
          "127.0.0.1",
          2,
        ]] as const
      ) {
        for (let i = 0; i < count; i++) {
          conns.push(await Deno.connect({ hostname, port: listener.addr.port }));
          conns.push(await listener.accept());
        }
      }
      const ports = [v4.addr.port, v6.addr.port];
      const found = establishedInodes(ports);
      assert.ok(found, "netlink answered");
      assert.deepEqual([...found].sort(), [...procEstablishedInodes(ports)].sort());
      // The 8 accepted ends are ours; the clients' ends have other local ports.
      const ours = new Set(socketsOf(Deno.pid).map((socket) => socket.inode));
      assert.equal([...found].filter((inode) => ours.has(inode)).length, 8);
      assert.equal(found.size, 8);
      assert.equal(establishedInodes([other.addr.port])?.size, 2);
    } finally {
      for (const conn of conns) conn.close();
      v4.close();
      v6.close();
      other.close();
    }
  },
});
