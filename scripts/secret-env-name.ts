import { SECRET_KEY_RULE, secretKeySegments } from '../domain/sources/secret-key.ts';
import { secretEnvName } from '../providers/secret-env-name.ts';
import { tenantDirectory } from '../providers/secret-store.ts';

/**
 * `npm run secret-env-name -- <tenant_id> <key> [prefix]`: where an operator puts a tenant's secret, as the env
 * variable of the `env` store (prefix CTRLPLANE_SECRET_ unless given) and as the path under a `dir:` store.
 */
const [tenant, key, prefix = 'CTRLPLANE_SECRET_'] = process.argv.slice(2);
if (!tenant || key === undefined) {
  console.error('usage: npm run secret-env-name -- <tenant_id> <key> [prefix]');
  process.exit(2);
}
const parsed = secretKeySegments(key);
if ('problem' in parsed) {
  console.error(`key ${JSON.stringify(key)} ${parsed.problem}: ${SECRET_KEY_RULE}`);
  process.exit(2);
}
console.log(`env: ${secretEnvName(prefix, tenant, parsed.segments)}`);
console.log(`dir: <dir>/${[tenantDirectory(tenant), ...parsed.segments].join('/')}`);
