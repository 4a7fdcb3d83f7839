/**
 * Apps beyond plain HTTP/1, written as their packages' docs show: a gRPC
 * server and client (@grpc/grpc-js with @grpc/proto-loader), an app with a
 * second port, a socket.io server with its default transports. Each runs in
 * a project from npmProject (frameworks.ts).
 */

export const GREETER_PROTO = `syntax = "proto3";

package helloworld;

service Greeter {
  rpc SayHello (HelloRequest) returns (HelloReply) {}
}

message HelloRequest {
  string name = 1;
}

message HelloReply {
  string message = 1;
}
`;

/** A grpc-js server whose replies are "<version> <pid>". */
export function grpcServer(version: string): string {
  return `import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const packageDefinition = protoLoader.loadSync("greeter.proto", {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const helloProto = grpc.loadPackageDefinition(packageDefinition).helloworld;

function sayHello(call, callback) {
  callback(null, { message: "${version} " + process.pid });
}

const server = new grpc.Server();
server.addService(helloProto.Greeter.service, { sayHello });
server.bindAsync(
  "127.0.0.1:" + (process.env.PORT ?? 50051),
  grpc.ServerCredentials.createInsecure(),
  (error) => {
    if (error) throw error;
  },
);
`;
}

/**
 * A grpc-js client: \`deno run -A client.js <port> <loops> <channels> [until-file]\`.
 * Each loop makes calls one after another until the file exists (or, without
 * one, one call), on a new channel per call (\`channels\` = "per-call": a
 * connection each) or on one channel of its own ("per-loop", as a service
 * keeps one; after a GOAWAY grpc-js reconnects, to a serving worker).
 * Prints {ok, failed, replies} as JSON.
 */
export const GRPC_CLIENT = `import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const [port, loops, channels, untilFile] = Deno.args;
const packageDefinition = protoLoader.loadSync("greeter.proto", { keepCase: true, defaults: true });
const helloProto = grpc.loadPackageDefinition(packageDefinition).helloworld;

function newClient() {
  // A channel of its own, on a connection of its own (grpc-js shares connections by default).
  return new helloProto.Greeter("127.0.0.1:" + port, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
}

function call(client) {
  return new Promise((resolve) => {
    // grpc-js's own deadline did not always fire when Deno's node:http2 had aborted a worker.
    const hung = setTimeout(() => resolve({ error: "hung: no answer nor error in 10 s" }), 10_000);
    client.sayHello({ name: "test" }, { deadline: Date.now() + 5000 }, (error, reply) => {
      clearTimeout(hung);
      resolve(error ? { error: error.code + " " + error.details } : { reply: reply.message });
    });
  });
}

function stopped() {
  if (!untilFile) return true;
  try {
    Deno.statSync(untilFile);
    return true;
  } catch {
    return false;
  }
}

let ok = 0;
const failed = [];
const replies = [];
await Promise.all(Array.from({ length: Number(loops) }, async () => {
  let client = newClient();
  do {
    const result = await call(client);
    if (result.error) failed.push(result.error);
    else {
      ok++;
      replies.push(result.reply);
    }
    if (channels === "per-call") {
      client.close();
      client = newClient();
    }
  } while (!stopped());
  client.close();
}));
console.log(JSON.stringify({ ok, failed, replies }));
// A closed channel may still hold a reconnect timer: do not wait for it.
Deno.exit(0);
`;

/** A socket.io server (default transports: long-polling, then WebSocket) greeting with "<version> <pid>". */
export function socketIoServer(version: string): string {
  return `import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer, {});

io.on("connection", (socket) => {
  socket.emit("hello", "${version} " + process.pid);
  socket.on("ping", (callback) => callback("${version} " + process.pid));
});

httpServer.listen(process.env.PORT);
`;
}

/**
 * socket.io clients: \`deno run -A clients.js <port> <clients> <status-file> <until-file>\`.
 * Each connects with the default transports, keeps the last greeting, and
 * sends a "ping" every 100 ms, counting answers, pings missed on a live
 * connection (no ack in 2 s), pings cut by a disconnect (in flight when the
 * connection closed: at most once delivery, socket.io's default),
 * disconnects, and how many pings were in flight at them (socket.io emits
 * "disconnect" before it fails the pending acks). Writes {greetings,
 * answered, missed, cut, disconnects, inFlight, errors: [{at, message}]} to
 * the status file every 100 ms and prints it at the end.
 */
export const SOCKET_IO_CLIENTS = `import { io } from "socket.io-client";

const [port, count, statusFile, untilFile] = Deno.args;
const state = { greetings: [], answered: 0, missed: 0, cut: 0, disconnects: 0, inFlight: 0, errors: [] };
const pending = Array.from({ length: Number(count) }, () => 0);
const sockets = Array.from({ length: Number(count) }, (_, i) => {
  const socket = io("http://127.0.0.1:" + port, { reconnectionDelay: 100, reconnectionDelayMax: 500 });
  socket.on("hello", (greeting) => state.greetings[i] = greeting);
  socket.on("connect_error", (error) => state.errors.push({ at: Date.now(), message: error.message }));
  // The last ones are the client's own (socket.close() below).
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") {
      state.disconnects++;
      state.inFlight += pending[i];
    }
  });
  return socket;
});
const timer = setInterval(() => {
  for (const [i, socket] of sockets.entries()) {
    if (!socket.connected) continue;
    pending[i]++;
    socket.timeout(2000).emit("ping", (error) => {
      pending[i]--;
      if (!error) state.answered++;
      else if (error.message === "socket has been disconnected") state.cut++;
      else state.missed++;
    });
  }
  Deno.writeTextFileSync(statusFile, JSON.stringify(state));
}, 100);
while (true) {
  try {
    Deno.statSync(untilFile);
    break;
  } catch {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
clearInterval(timer);
await new Promise((resolve) => setTimeout(resolve, 2100)); // the last acks
for (const socket of sockets) socket.close();
console.log(JSON.stringify(state));
`;
