import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The `temporal` binary scripts/setup.sh found or built: TEMPORAL_CLI, then the path setup recorded. */
export function temporalCliPath(): string {
  const candidates = [
    process.env.TEMPORAL_CLI,
    existsSync(`${REPO_ROOT}.data/temporal-cli-path`)
      ? readFileSync(`${REPO_ROOT}.data/temporal-cli-path`, 'utf8').trim()
      : undefined,
    `${REPO_ROOT}.tools/bin/temporal`,
  ];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error('temporal CLI not found: run `npm run setup` (scripts/setup.sh) first');
  return found;
}

/** Dev-server flags that register ctrlplane's search attributes when the namespace is created. */
export function searchAttributeFlags(attributes: readonly { name: string; type: string }[]): string[] {
  const typeName: Record<string, string> = { KEYWORD: 'Keyword', BOOL: 'Bool' };
  return attributes.flatMap((a) => ['--search-attribute', `${a.name}=${typeName[a.type] ?? a.type}`]);
}
