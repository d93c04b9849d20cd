// Runs SQL in an in-memory DuckDB and prints the rows of the last statement as JSON, one
// object per line. Usage: node query.mjs "<sql>" | node query.mjs --file <path-to-sql>
// The session time zone is UTC, so SQL functions (strftime, casts to VARCHAR) format times the
// same everywhere. Values use the JSON conversion of @duckdb/node-api: BIGINT and NaN become
// strings, NULL becomes null; TIMESTAMP WITH TIME ZONE values would be shown in the process's
// local zone, so queries select epoch_us(t) or strftime(t, ...) instead. Exits 1 on error.
import { readFileSync } from 'node:fs';

import { DuckDBInstance } from '@duckdb/node-api';

function usage() {
  process.stderr.write('usage: node query.mjs "<sql>" | node query.mjs --file <path>\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let sql;
if (args.length === 1) {
  sql = args[0];
} else if (args.length === 2 && args[0] === '--file') {
  sql = readFileSync(args[1], 'utf8');
} else {
  usage();
}

try {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run("SET TimeZone = 'UTC'");
  const reader = await connection.runAndReadAll(sql);
  const lines = reader.getRowObjectsJson().map((row) => JSON.stringify(row));
  process.stdout.write(lines.length ? lines.join('\n') + '\n' : '');
  connection.closeSync();
  instance.closeSync();
} catch (e) {
  process.stderr.write(`duckdb: ${e.message}\n`);
  process.exit(1);
}
