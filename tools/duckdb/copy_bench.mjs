// The DuckDB side of vigil-bench's lake.parquet_write: loads a Parquet file into an in-memory
// table (not timed), then times COPY ... TO (FORMAT parquet, COMPRESSION zstd) on one thread,
// best of `runs`. Usage: node copy_bench.mjs <input.parquet> <output.parquet> [runs]
// Prints one JSON object: {"rows", "seconds", "bytes"}. Exits 1 on error.
import { statSync } from 'node:fs';

import { DuckDBInstance } from '@duckdb/node-api';

const [input, output, runsArg] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: node copy_bench.mjs <input.parquet> <output.parquet> [runs]\n');
  process.exit(2);
}
const runs = Number(runsArg ?? 3);
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

try {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run('SET threads = 1');
  await connection.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${quote(input)})`);
  const count = await connection.runAndReadAll('SELECT count(*)::INTEGER AS n FROM t');
  const rows = count.getRowObjectsJson()[0].n;
  let best = Infinity;
  for (let i = 0; i < runs; ++i) {
    const started = performance.now();
    await connection.run(
        `COPY t TO ${quote(output)} (FORMAT parquet, COMPRESSION zstd)`);
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  process.stdout.write(
      JSON.stringify({ rows, seconds: best, bytes: statSync(output).size }) + '\n');
  connection.closeSync();
  instance.closeSync();
} catch (e) {
  process.stderr.write(`duckdb: ${e.message}\n`);
  process.exit(1);
}
