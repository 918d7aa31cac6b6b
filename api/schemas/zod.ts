import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

/**
 * zod with `.openapi()` (parameter metadata needs it; schema names use zod's own `.meta({ id })`).
 * Every schema module of the API imports `z` from here, so the extension is installed before any schema is built.
 */
extendZodWithOpenApi(z);

export { z };
