/** hop.ts: the marker, and reading an answer off the wire in every framing. */
import assert from "node:assert/strict";
import {
  hopMarker,
  hopTarget,
  parseHop,
  readResponse,
  requestFraming,
  requestHead,
  writeBody,
} from "./hop.ts";

const KEY = "0123456789abcdef0123456789abcdef";
const marker = hopMarker(KEY);

Deno.test("hop: a target carries the client and the hop count, and comes back whole", () => {
  for (
    const client of [
      { hostname: "203.0.113.7", port: 51234 },
      { hostname: "2001:db8::1", port: 1 },
    ]
  ) {
    const target = hopTarget(marker, { target: "/a/b?x=1&y=%2F#no", client, hops: 3 });
    assert.ok(target.startsWith(marker));
    assert.deepEqual(parseHop(target, marker), {
      prefix: "",
      target: "/a/b?x=1&y=%2F#no",
      client,
      hops: 3,
    });
    // As Deno.serve gives it: a whole URL.
    const url = `http://example.test${target}`;
    assert.equal(parseHop(url, marker)?.prefix, "http://example.test");
  }
});

Deno.test("hop: anything else is the client's own request", () => {
  const real = hopTarget(marker, {
    target: "/",
    client: { hostname: "127.0.0.1", port: 1 },
    hops: 1,
  });
  for (
    const target of [
      "/",
      "/~hotreload-hop/",
      real.replace(KEY, "f".repeat(32)), // another instance's (or a guess)
      `/prefix${real}`, // not at the start of the path
      `${marker}1/80/127.0.0.1`, // no target
      `${marker}x/80/127.0.0.1/`,
      `${marker}1/99999/127.0.0.1/`,
      `${marker}1/80/%E0%A4%A/`, // not decodable
      "*",
    ]
  ) {
    assert.equal(parseHop(target, marker), undefined, target);
  }
});

Deno.test("hop: a request head keeps the headers as given", () => {
  const head = new TextDecoder().decode(
    requestHead("POST", "/x", "1.0", [["X-Case", "Kept"], ["a", "1"], ["a", "2"]]),
  );
  assert.equal(head, "POST /x HTTP/1.0\r\nX-Case: Kept\r\na: 1\r\na: 2\r\n\r\n");
  assert.deepEqual(requestFraming([["Transfer-Encoding", "gzip, chunked"]]), { kind: "chunked" });
  assert.deepEqual(requestFraming([["content-length", "12"]]), { kind: "length", length: 12 });
  assert.deepEqual(requestFraming([["content-length", "0"]]), { kind: "none" });
  assert.deepEqual(requestFraming([]), { kind: "none" });
});

/** A stream of the given pieces, as a socket would deliver them. */
function wire(...pieces: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
}

async function bodyOf(stream: ReadableStream<Uint8Array> | null): Promise<string | null> {
  return stream === null ? null : await new Response(stream).text();
}

Deno.test("hop: an answer with a length, split anywhere, interim answers skipped", async () => {
  const answer = await readResponse(
    wire(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Made\r\nX-A: 1\r\nSet-Cookie: a\r\n",
      "Set-Cookie: b\r\ncontent-length: 11\r\n\r\nhello",
      " world",
    ),
    false,
  );
  assert.equal(answer.status, 201);
  assert.equal(answer.reason, "Made");
  assert.deepEqual(answer.headers, [
    ["X-A", "1"],
    ["Set-Cookie", "a"],
    ["Set-Cookie", "b"],
    ["content-length", "11"],
  ]);
  assert.equal(await bodyOf(answer.body), "hello world");
});

Deno.test("hop: a chunked answer, with extensions and trailers, split inside chunks", async () => {
  const answer = await readResponse(
    wire(
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhel",
      "lo\r\n",
      "6\r\n world\r",
      "\n0\r\nX-Trailer: t\r\n\r\n",
    ),
    false,
  );
  assert.deepEqual(answer.framing, { kind: "chunked" });
  assert.equal(await bodyOf(answer.body), "hello world");
});

Deno.test("hop: an answer read until the close; none for HEAD, 204 and 304", async () => {
  const closeDelimited = await readResponse(wire("HTTP/1.0 200 OK\r\n\r\nall ", "of it"), false);
  assert.equal(await bodyOf(closeDelimited.body), "all of it");
  for (
    const [head, status] of [[true, "200 OK\r\ncontent-length: 10"], [false, "204 No Content"], [
      false,
      "304 Not Modified",
    ]] as const
  ) {
    const answer = await readResponse(wire(`HTTP/1.1 ${status}\r\n\r\n`), head);
    assert.equal(answer.body, null);
  }
});

Deno.test("hop: an answer cut short fails, never passes as whole", async () => {
  await assert.rejects(() => readResponse(wire("HTTP/1.1 200 OK\r\ncontent-le"), false));
  await assert.rejects(() => readResponse(wire("SSH-2.0-x\r\n\r\n"), false));
  const short = await readResponse(wire("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"), false);
  await assert.rejects(() => bodyOf(short.body));
  const chunked = await readResponse(
    wire("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"),
    false,
  );
  await assert.rejects(() => bodyOf(chunked.body));
});

Deno.test("hop: a body is written in its framing", async () => {
  const written: string[] = [];
  const write = (bytes: Uint8Array) => {
    written.push(new TextDecoder().decode(bytes));
    return Promise.resolve();
  };
  await writeBody(wire("ab", "", "cde"), { kind: "chunked" }, write);
  assert.equal(written.join(""), "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n");
  written.length = 0;
  await writeBody(wire("ab", "cde"), { kind: "length", length: 5 }, write);
  assert.equal(written.join(""), "abcde");
});
