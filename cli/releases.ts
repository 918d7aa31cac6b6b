import { randomUUID } from 'node:crypto';
import type { Schemas } from '../clients/typescript/client.ts';
import { type CliContext, must, parse } from './command-support.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { printInstance, printJson, printTable } from './output.ts';

type Release = Schemas['Release'];

export const RELEASES_USAGE = `  releases ID                                      the instance's releases, newest first (* marks the current one)
  release ID RELEASE                               one release (number or rel_ id) with its spec
  rollback ID RELEASE [--wait] [--no-rollback-on-failure]
                                                   re-apply that release's spec as a new release`;

/** `releases`, `release` and `rollback`: what ran before, and going back to it. */
export async function releasesCommand(ctx: CliContext, verb: string, args: string[]): Promise<void> {
  const { api } = ctx;
  switch (verb) {
    case 'releases': {
      const { positionals } = parse(args, {});
      const [id, ...rest] = positionals;
      if (!id || rest.length > 0) throw new CliError(EXIT.usage, 'usage: ctrlplane instances releases ID');
      const items: Release[] = [];
      let cursor: string | undefined;
      do {
        const { data } = await must(
          api.GET('/v1/instances/{id}/releases', {
            params: { path: { id }, query: { limit: 100, ...(cursor ? { cursor } : {}) } },
          }),
          `releases ${id}`,
        );
        items.push(...data.items);
        cursor = data.next_cursor;
      } while (cursor);
      if (ctx.output === 'json') printJson(items);
      else
        printTable(
          ['', 'number', 'id', 'status', 'created', 'by', 'description'],
          items.map((r) => [
            r.current ? '*' : '',
            `v${r.number}`,
            r.id,
            r.error ? `${r.status}: ${r.error}` : r.status,
            r.created_at,
            r.actor ?? '',
            r.description,
          ]),
        );
      return;
    }
    case 'release': {
      const { positionals } = parse(args, {});
      const [id, release, ...rest] = positionals;
      if (!id || !release || rest.length > 0)
        throw new CliError(EXIT.usage, 'usage: ctrlplane instances release ID RELEASE');
      const { data } = await must(
        api.GET('/v1/instances/{id}/releases/{release}', { params: { path: { id, release } } }),
        `release ${id} ${release}`,
      );
      // The spec is the point of reading one release: JSON either way, after a summary line in table mode.
      if (ctx.output === 'table') {
        process.stdout.write(`v${data.number} ${data.id} ${data.status}: ${data.description}\n`);
      }
      printJson(ctx.output === 'json' ? data : data.spec);
      return;
    }
    case 'rollback': {
      const { values, positionals } = parse(args, {
        wait: { type: 'boolean' },
        'no-rollback-on-failure': { type: 'boolean' },
      });
      const [id, release, ...rest] = positionals;
      if (!id || !release || rest.length > 0) {
        throw new CliError(
          EXIT.usage,
          'usage: ctrlplane instances rollback ID RELEASE [--wait] [--no-rollback-on-failure]',
        );
      }
      const { data } = await must(
        api.POST('/v1/instances/{id}/rollback', {
          params: {
            path: { id },
            query: {
              ...(values.wait ? { wait: 'true' } : {}),
              ...(values['no-rollback-on-failure'] ? { rollback_on_failure: 'false' as const } : {}),
            },
          },
          body: { release: /^\d+$/.test(release) ? Number(release) : release },
          headers: { 'idempotency-key': randomUUID() },
        }),
        `rollback ${id} to ${release}`,
      );
      if (data) printInstance(data, ctx.output);
      if (data?.state === 'failed')
        throw new CliError(EXIT.failed, `${id} is failed${data.error ? `: ${data.error}` : ''}`);
      return;
    }
    default:
      throw new CliError(EXIT.usage, `unknown command: ${verb}`);
  }
}
