import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { configTable, documentedVariables, schemaDefault, withConfigTable } from '../config/config-table.ts';
import { configFields } from '../config/env.ts';
import { settingDoc } from '../config/setting.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';

// Pure: the README, the schema and the source files, nothing started.
describe("the README's configuration table is the schema's", () => {
  const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');

  it('holds the table rendered from config/env.ts (`npm run config-docs` rewrites it)', () => {
    assert.ok(readme.includes(configTable()), 'README.md is out of date: run `npm run config-docs`');
    assert.equal(withConfigTable(readme), readme);
  });

  it('lists every variable of the schema once, with a meaning', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
    for (const name of Object.keys(configFields) as (keyof typeof configFields)[]) {
      assert.equal(rows.filter((row) => row === name).length, 1, `${name} is in the table once`);
      assert.ok(settingDoc(configFields[name])?.meaning.trim(), `${name} has a meaning`);
    }
    assert.equal(new Set(rows).size, rows.length, 'no variable twice');
    assert.deepEqual(
      rows,
      documentedVariables().map((v) => v.name),
    );
  });

  it('gives, for a default written by hand, the value the schema really uses', () => {
    for (const name of Object.keys(configFields) as (keyof typeof configFields)[]) {
      const written = settingDoc(configFields[name])?.default;
      const actual = schemaDefault(name);
      if (written === undefined || actual === undefined) continue;
      assert.ok(
        written.includes(`\`${actual}\``),
        `${name}: the table says ${written}, the schema uses ${actual}`,
      );
    }
  });
});

describe('every setting is read through config/', () => {
  const SOURCE_DIRS = ['api', 'activities', 'config', 'db', 'domain', 'providers', 'worker', 'workflows'];
  const files = SOURCE_DIRS.flatMap((dir) =>
    readdirSync(`${REPO_ROOT}${dir}`, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `${dir}/${f}`),
  );

  it('no file outside config/ reads a variable of the environment (PATH, for child processes, aside)', () => {
    assert.ok(files.length > 50, 'the source files were found');
    const offenders: string[] = [];
    for (const file of files) {
      if (file.startsWith('config/')) continue;
      const text = readFileSync(`${REPO_ROOT}${file}`, 'utf8');
      for (const match of text.matchAll(/process\.env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[)/g)) {
        if (match[1] !== 'PATH') offenders.push(`${file}: ${match[0]}`);
      }
      for (const match of text.matchAll(/\benv(?:\.|\[['"])((?:CTRLPLANE|CP)_[A-Z0-9_]+)/g)) {
        offenders.push(`${file}: ${match[0]}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('every CTRLPLANE_ variable named in config/ is in the schema (or is one no longer read)', () => {
    const documented = new Set(documentedVariables().map((v) => v.name));
    const named = new Set<string>();
    for (const file of files.filter((f) => f.startsWith('config/'))) {
      const text = readFileSync(`${REPO_ROOT}${file}`, 'utf8');
      for (const match of text.matchAll(/\b(CTRLPLANE_[A-Z0-9_]*[A-Z0-9])\b/g))
        if (match[1]) named.add(match[1]);
    }
    const retired = ['CTRLPLANE_SECRET_STORE_PER_TENANT'];
    // Secret values (CTRLPLANE_SECRET_<TENANT>__<KEY>) are data the env secret store reads, not settings.
    const notSettings = ['CTRLPLANE_SECRET', 'CTRLPLANE_SECRET_ACME__DB__PASSWORD'];
    const missing = [...named].filter(
      (name) => !documented.has(name) && !retired.includes(name) && !notSettings.includes(name),
    );
    assert.deepEqual(missing, []);
  });

  it("sets only variables of the schema for docker-compose.yml's api and workers", () => {
    const compose = parse(readFileSync(`${REPO_ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    const known = new Set(Object.keys(configFields));
    for (const service of ['api', 'worker']) {
      const names = Object.keys(compose.services[service]?.environment ?? {});
      assert.ok(names.includes('DATABASE_URL'), `${service} has the ctrlplane environment`);
      assert.deepEqual(
        names.filter((name) => !known.has(name)),
        [],
        service,
      );
    }
  });
});
