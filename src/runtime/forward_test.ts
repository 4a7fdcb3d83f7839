/** forward.ts against a real server on a free loopback port (the "serving workers"). */
import assert from "node:assert/strict";
import { forward, forwardOrigin, HOP_HEADER } from "./forward.ts";

function serving() {
  const seen: Array<{ method: string; hop: string | null; body: string; host: string | null }> = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    seen.push({
      method: request.method,
      hop: request.headers.get(HOP_HEADER),
      body: await request.text(),
      host: request.headers.get("x-original"),
    });
    return new Response("new code", { headers: { "x-from": "serving" } });
  });
  const origin = forwardOrigin(server.addr as Deno.NetAddr)!;
  return { server, seen, origin };
}

Deno.test("forward: a request is sent on, counted, and answered with Connection: close", async () => {
  const { server, seen, origin } = serving();
  try {
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    const request = new Request("http://localhost:1/path?q=1", {
      method: "POST",
      headers: { "content-length": "5", "x-original": "kept", connection: "keep-alive" },
      body: "hello",
    });
    const { response } = await forward(request, origin);
    assert.ok(response);
    assert.equal(await response.text(), "new code");
    assert.equal(response.headers.get("connection"), "close");
    assert.equal(response.headers.get("x-from"), "serving");
    assert.deepEqual(seen, [{ method: "POST", hop: "1", body: "hello", host: "kept" }]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("forward: upgrades and requests past the hop limit are answered where they are", async () => {
  const { server, seen, origin } = serving();
  try {
    const upgrade = new Request("http://localhost:1/", { headers: { upgrade: "websocket" } });
    assert.equal((await forward(upgrade, origin)).response, undefined);
    const looping = new Request("http://localhost:1/", { headers: { [HOP_HEADER]: "8" } });
    assert.equal((await forward(looping, origin)).response, undefined);
    assert.deepEqual(seen, [], "neither was sent on");
  } finally {
    await server.shutdown();
  }
});

Deno.test("forward: when nobody answers, the request comes back whole, body included", async () => {
  const { server, origin } = serving();
  await server.shutdown(); // nothing listens there any more
  const request = new Request("http://localhost:1/", {
    method: "PUT",
    headers: { "content-length": "4" },
    body: "data",
  });
  const { response, request: local } = await forward(request, origin);
  assert.equal(response, undefined);
  assert.equal(await local.text(), "data");
});

Deno.test("forwardOrigin: the wildcard addresses become loopback", () => {
  assert.equal(
    forwardOrigin({ transport: "tcp", hostname: "0.0.0.0", port: 8000 }),
    "http://127.0.0.1:8000",
  );
  assert.equal(
    forwardOrigin({ transport: "tcp", hostname: "::", port: 8000 }),
    "http://[::1]:8000",
  );
});
