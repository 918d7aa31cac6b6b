import proto from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';

const INDEXED_VALUE_TYPE = {
  KEYWORD: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  BOOL: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
} as const;

/**
 * Registers ctrlplane's custom search attributes on a real cluster, adding only the missing ones, so it is
 * safe on every worker start. (The dev server gets them from `--search-attribute` flags already.)
 */
export async function registerSearchAttributes(
  connection: NativeConnection,
  namespace: string,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = CTRLPLANE_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, INDEXED_VALUE_TYPE[key.type as keyof typeof INDEXED_VALUE_TYPE]]),
    ),
  });
  return missing.map((key) => key.name);
}
