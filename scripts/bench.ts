/**
 * `npm run bench`: the command benchmarks (scripts/bench-commands.ts, real Docker);
 * `npm run bench -- --scale`: the scale bench (scripts/bench-scale.ts, a provider that does no I/O).
 */
await import(process.argv.includes('--scale') ? './bench-scale.ts' : './bench-commands.ts');
