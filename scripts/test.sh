#!/usr/bin/env bash
# The one test command (`npm test`): installs what the tests need, type-checks,
# checks the layers, runs every test, and ends with a "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh || exit 1

echo "== type check"
npx tsc -p tsconfig.json || exit 1

echo "== architecture (.dependency-cruiser.cjs)"
npm run --silent check:architecture || exit 1

echo "== tests"
results=.vitest-results.json
rm -f "$results"
npx vitest run --reporter=default --reporter=json --outputFile="$results" "$@"
status=$?

if [ -f "$results" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
    if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1); }
  ' "$results" || status=1
else
  echo "0 passed, 0 failed (the test runner produced no results)"
  status=1
fi
exit $status
