/**
 * Apps written exactly as their frameworks' docs show (reading PORT the way
 * each does), and projects that resolve their npm packages through
 * tests/fixtures/npm's deno.json and committed lock (installed by the first
 * test that needs them: see outside.ts).
 */
import { makeProject } from "./helpers.ts";
import { npmFixtures } from "./outside.ts";

const FIXTURE = new URL("./fixtures/npm/", import.meta.url);

/** Each app answers GET / with `body` and its pid: "<body> <pid>". */
export const FRAMEWORK_APPS: Record<string, (body: string) => string> = {
  express: (body) =>
    `import express from "express";

const app = express();
const port = process.env.PORT ?? 3000;

app.get("/", (req, res) => {
  res.send(\`${body} \${process.pid}\`);
});

app.listen(port, () => {
  console.log(\`Example app listening on port \${port}\`);
});
`,
  "node:http": (body) =>
    `import { createServer } from "node:http";

const PORT = process.env.PORT ?? 3000;

const server = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(\`${body} \${process.pid}\`);
});

server.listen(PORT, () => {
  console.log(\`Server running at http://localhost:\${PORT}/\`);
});
`,
  koa: (body) =>
    `import Koa from "koa";

const app = new Koa();

app.use(async (ctx) => {
  ctx.body = \`${body} \${process.pid}\`;
});

app.listen(process.env.PORT ?? 3000);
`,
  fastify: (body) =>
    `import Fastify from "fastify";

const fastify = Fastify({ logger: false });

fastify.get("/", async () => \`${body} \${process.pid}\`);

try {
  await fastify.listen({ port: Number(process.env.PORT ?? 3000), host: "0.0.0.0" });
} catch (err) {
  fastify.log.error(err);
  process.exit(1);
}
`,
  hono: (body) =>
    `import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text(\`${body} \${process.pid}\`));

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) });
`,
};

/** A project with `files` and the fixture's deno.json and deno.lock, so npm imports resolve. */
export async function npmProject(files: Record<string, string>): Promise<string> {
  await npmFixtures();
  return await makeProject({
    "deno.json": await Deno.readTextFile(new URL("deno.json", FIXTURE)),
    "deno.lock": await Deno.readTextFile(new URL("deno.lock", FIXTURE)),
    ...files,
  });
}
