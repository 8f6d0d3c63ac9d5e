/**
 * `npm run drill [-- --size-mib N --rounds N --seed N]`: the interrupt
 * drill of issue 15 at full size (default 1 GiB, 10 Ctrl-Cs each for add,
 * checkout, push, fetch and clone; test/interrupt-drill.ts says what each
 * round checks). Prints each operation's window and moments, and the clone
 * bytes ratios; exits 1 on the first failed check.
 */
import { parseArgs } from 'node:util';
import { runDrill } from '../test/interrupt-drill.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '10' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
  },
});
const size = Number(values['size-mib']) * 1024 * 1024;
const rounds = Number(values.rounds);
const seed = Number(values.seed);
console.log(`interrupt drill: ${values['size-mib']} MiB, ${rounds} rounds each, seed ${seed}`);
const started = performance.now();
const report = await runDrill({ size, rounds, seed, log: (line) => console.log(`  ${line}`) });
for (const op of report.operations) {
  console.log(
    `${op.operation.padEnd(8)} uninterrupted ${op.fullSeconds.toFixed(2)} s; Ctrl-C at ${op.moments.join(', ')} s; stopped ${op.interrupted}/${op.moments.length}`,
  );
}
console.log(
  `clone: one uninterrupted clone ${(report.cloneBytes / 1048576).toFixed(1)} MiB sent; interrupted + rerun: ${report.cloneRatios.map((r) => `${r.toFixed(3)}x`).join(', ')} (max ${Math.max(...report.cloneRatios).toFixed(3)}x, limit 1.1x)`,
);
console.log(
  `${report.commits} commits kept; drill passed in ${((performance.now() - started) / 1000).toFixed(0)} s`,
);
