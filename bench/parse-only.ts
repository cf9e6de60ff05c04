/** Baseline for bench/backfill.ts: read and parse the files, nothing else. */
import { forEachHandbookRow } from '../src/adapters/fs/handbook-csv.js';

let amount = 0;
const n = await forEachHandbookRow(process.argv.slice(2), (r) => {
  amount += r.amount;
});
process.stderr.write(`parsed ${n} rows (sum ${amount.toFixed(2)})\nok\n`);
