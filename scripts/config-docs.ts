/** Rewrites the configuration table of README.md from the schema (config/config-table.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigTable } from '../config/config-table.ts';
import { REPO_ROOT } from './temporal-cli.ts';

const path = `${REPO_ROOT}README.md`;
const before = readFileSync(path, 'utf8');
const after = withConfigTable(before);
writeFileSync(path, after);
console.log(
  after === before ? 'README.md: configuration table up to date' : 'README.md: configuration table rewritten',
);
