import { loadConfig } from '../config/env.ts';
import { prepareDatabase } from './database.ts';

/** `npm run migrate`: creates the database if missing and applies pending committed migrations. */
const { DATABASE_URL } = loadConfig();
const applied = await prepareDatabase(DATABASE_URL);
console.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database is up to date');
