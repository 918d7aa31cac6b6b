import { resolve } from 'node:path';
import { writeWorkflowBundle } from './workflow-bundle.ts';

/** `npm run build` (and the image build): `node dist/worker/bundle-workflows-cli.js <out.js>`. */
const out = process.argv[2];
if (!out) {
  console.error('usage: bundle-workflows-cli <output file>');
  process.exit(2);
}
await writeWorkflowBundle(resolve(out));
console.log(`workflow bundle: ${out}`);
