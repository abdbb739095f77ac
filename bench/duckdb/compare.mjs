// cep backtest against DuckDB on the same events and the same rules
// (rules.mjs): both result sets are compared row by row, and both wall
// times are printed. Usage (bench/duckdb/README.md):
//   node compare.mjs --events FILE.jsonl --rules 300 --cep ../../build-release/cep [--threads T] [--cep-threads N]
import { DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, statSync, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { STREAM_SQL, DUCK_COLUMNS, makeRules } from './rules.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const events = resolve(args.events ?? '');
const nrules = Number(args.rules ?? 300);
const cepBin = resolve(args.cep ?? '../../build-release/cep');
const cepThreads = Number(args['cep-threads'] ?? cpus().length); // both engines get the machine's cores
if (!args.events) {
  console.error('usage: node compare.mjs --events FILE.jsonl [--rules 300] [--cep PATH] [--threads T] [--cep-threads N]');
  process.exit(2);
}
const rules = makeRules(nrules);
const dir = mkdtempSync(join(tmpdir(), 'cep-duck-'));
const fmt = (s) => s.toFixed(2);

// ---- cep ----
const pack = join(dir, 'pack.sql');
writeFileSync(pack, STREAM_SQL + rules.map((r) => r.cep).join('\n'));
const alerts = join(dir, 'alerts.jsonl');
let t0 = process.hrtime.bigint();
const cepArgs = ['backtest', '--rules', pack, '--input', events, '--alerts', alerts, '--threads', String(cepThreads), '--quiet'];
const run = spawnSync(cepBin, cepArgs, {
  stdio: ['ignore', 'inherit', 'pipe'],
});
const cepSecs = Number(process.hrtime.bigint() - t0) / 1e9;
if (run.status !== 0) {
  console.error(run.stderr.toString());
  process.exit(1);
}
process.stderr.write(run.stderr);
// a group's row: its last update; a retraction removes it
const cepRows = new Map();
const lines = createInterface({ input: createReadStream(alerts), crlfDelay: Infinity }); // gigabytes at 10M events
for await (const line of lines) {
  if (!line) continue;
  const a = JSON.parse(line);
  const id = `${a.rule}|${a.key}|${a.window.start}`;
  if (a.value === null) cepRows.delete(id);
  else cepRows.set(id, Object.values(a.value).join(','));
}

// ---- DuckDB ----
const instance = await DuckDBInstance.create(':memory:', args.threads ? { threads: String(args.threads) } : {});
const conn = await instance.connect();
t0 = process.hrtime.bigint();
await conn.run(
  `CREATE TABLE ev AS SELECT * FROM read_json('${events}', format = 'newline_delimited', columns = ${DUCK_COLUMNS})`,
);
const loadSecs = Number(process.hrtime.bigint() - t0) / 1e9;
const duckRows = new Map();
t0 = process.hrtime.bigint();
for (const r of rules) {
  const reader = await conn.runAndReadAll(r.duck);
  for (const row of reader.getRows()) {
    const [k, ws, ...vals] = row;
    duckRows.set(`${r.name}|${k}|${ws}`, vals.map(String).join(','));
  }
}
const querySecs = Number(process.hrtime.bigint() - t0) / 1e9;
const threads = (await conn.runAndReadAll("SELECT current_setting('threads')")).getRows()[0][0];

// ---- the comparison ----
let missing = 0, extra = 0, differ = 0;
const shown = [];
for (const [id, v] of duckRows) {
  if (!cepRows.has(id)) missing++, shown.length < 5 && shown.push(`only in DuckDB: ${id} = ${v}`);
  else if (cepRows.get(id) !== v) differ++, shown.length < 5 && shown.push(`differ: ${id}: cep ${cepRows.get(id)}, DuckDB ${v}`);
}
for (const [id, v] of cepRows) if (!duckRows.has(id)) extra++, shown.length < 5 && shown.push(`only in cep: ${id} = ${v}`);
const equal = !missing && !extra && !differ;
const duckSecs = loadSecs + querySecs;
const mb = statSync(events).size / 1e6;
console.log(`events file: ${events} (${mb.toFixed(0)} MB), ${nrules} rules, ${cpus().length} cores`);
console.log(`result rows: cep ${cepRows.size}, DuckDB ${duckRows.size}: ${equal ? 'EQUAL' : `DIFFERENT (${missing} only in DuckDB, ${extra} only in cep, ${differ} with other values)`}`);
for (const s of shown) console.log(`  ${s}`);
console.log(`cep backtest (${cepThreads} threads):   ${fmt(cepSecs)} s`);
console.log(`DuckDB (${threads} threads):        ${fmt(duckSecs)} s  (load ${fmt(loadSecs)} s + ${nrules} queries ${fmt(querySecs)} s)`);
console.log(`cep / DuckDB: ${(cepSecs / duckSecs).toFixed(2)}x`);
rmSync(dir, { recursive: true, force: true });
process.exit(equal ? 0 : 1);
