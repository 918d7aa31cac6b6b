import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openApiDocument } from '../api/openapi.ts';
import { GENERATED_TYPES_PATH, generateClientTypes } from '../clients/typescript/generate-types.ts';

/**
 * `npm run client:generate`: writes clients/typescript/openapi-types.ts from the document the API serves at
 * /openapi.json (the same function builds both), or from a running API's: `-- --url http://host:8080/openapi.json`.
 */
const urlFlag = process.argv.indexOf('--url');
const url = urlFlag >= 0 ? process.argv[urlFlag + 1] : undefined;
const document = url ? await (await fetch(url)).json() : openApiDocument();
writeFileSync(GENERATED_TYPES_PATH, await generateClientTypes(document));
console.log(`client types: ${fileURLToPath(GENERATED_TYPES_PATH)} (from ${url ?? 'api/openapi.ts'})`);
