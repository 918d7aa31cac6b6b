/**
 * `npm run bench`: the command benchmarks (scripts/bench-commands.ts, real Docker);
 * `npm run bench -- --scale`: the scale bench (scripts/bench-scale.ts, a provider that does no I/O);
 * `npm run bench -- --placement`: what placement by capacity costs per create (scripts/bench-placement.ts).
 */
const bench = process.argv.includes('--scale')
  ? './bench-scale.ts'
  : process.argv.includes('--placement')
    ? './bench-placement.ts'
    : './bench-commands.ts';
await import(bench);
