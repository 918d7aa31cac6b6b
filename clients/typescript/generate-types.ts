import openapiTS, { type OpenAPI3 } from 'openapi-typescript';
import type { OpenApiDocument } from '../../api/openapi.ts';

/** Where the generated types live, checked in: regenerate them with `npm run client:generate`. */
export const GENERATED_TYPES_PATH = new URL('./openapi-types.ts', import.meta.url);

/** The TypeScript types (`paths`, `components`, `operations`) of an OpenAPI document, as the client uses them. */
export async function generateClientTypes(document: OpenApiDocument | unknown): Promise<string> {
  // The generator walks (and may annotate) the object it is given: hand it a copy.
  return openapiTS(structuredClone(document) as OpenAPI3, { exportType: false });
}
