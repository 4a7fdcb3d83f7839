/** The JSONC reader: comments and trailing commas, with every offset kept. */
import assert from "node:assert/strict";
import { parse, stripJsonc } from "./jsonc.ts";

Deno.test("jsonc: comment markers inside strings survive", () => {
  const text = '{"url": "http://x.test/a//b", "glob": "src/**/*.ts", "c": "/* not */ // no"}';
  assert.deepEqual(parse(text), {
    url: "http://x.test/a//b",
    glob: "src/**/*.ts",
    c: "/* not */ // no",
  });
});

Deno.test("jsonc: escaped quotes and backslashes inside strings", () => {
  assert.deepEqual(parse('{"a": "say \\"hi\\" // still a string", "b": "\\\\"} // comment'), {
    a: 'say "hi" // still a string',
    b: "\\",
  });
  assert.deepEqual(parse('["\\\\", "//"] /* "x" */'), ["\\", "//"]);
  // an escaped quote does not end the string, so the "//" after it is not a comment
  assert.deepEqual(parse('{"a": "x\\"//", "b": "/*\\""}'), { a: 'x"//', b: '/*"' });
});

Deno.test("jsonc: line and block comments, including at the start and end", () => {
  const text =
    '// head\n/* block\n over lines */ {"a": /* inline */ 1, // tail\n"b": 2}\n/* end */';
  assert.deepEqual(parse(text), { a: 1, b: 2 });
  assert.deepEqual(parse('{"a": 1 /* , */ }'), { a: 1 });
  assert.deepEqual(parse('{"a":/**/1}'), { a: 1 });
});

Deno.test("jsonc: trailing commas in arrays and objects, also before comments", () => {
  assert.deepEqual(parse('{"a": [1, 2,], "b": {"c": 3,},}'), { a: [1, 2], b: { c: 3 } });
  assert.deepEqual(parse("[1, // one\n /* more */ ]"), [1]);
  assert.deepEqual(parse('["a,", "b",]'), ["a,", "b"]);
});

Deno.test("jsonc: commas that are not trailing stay errors", () => {
  for (const text of ["[,]", "{,}", "[1,,]", '{"a":,}', "[1,,2]"]) {
    assert.throws(() => parse(text), SyntaxError, text);
  }
});

Deno.test("jsonc: stripping keeps every offset (errors point into the original text)", () => {
  const text = '\uFEFF{ /* é */ "a": [1,], // x\n "b": "//" }';
  const json = stripJsonc(text);
  assert.equal(json.length, text.length);
  assert.equal(json.indexOf('"b"'), text.indexOf('"b"'));
  assert.equal(json.split("\n").length, text.split("\n").length);
  assert.deepEqual(JSON.parse(json), { a: [1], b: "//" });
});

Deno.test("jsonc: an unterminated block comment is an error with its position", () => {
  assert.throws(() => parse('{"a": 1}\n  /* open'), {
    name: "SyntaxError",
    message: "Unterminated block comment at line 2 column 3",
  });
});
