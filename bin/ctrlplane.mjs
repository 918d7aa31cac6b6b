#!/usr/bin/env node
// The `ctrlplane` command: cli/main.ts, run from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
