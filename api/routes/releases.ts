import type { Request, Response } from 'express';
import type { InstanceRecord } from '../../db/entities/instance-record.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import type { Release, ReleaseSelector } from '../../domain/release.ts';
import { callerOf } from '../auth.ts';
import { releasePathSchema, releasesQuerySchema } from '../schemas/releases.ts';
import { parseInput } from '../validate.ts';
import type { RouteRegistrar } from './instances.ts';
import { type InstanceRoutesDeps, loadOwned } from './route-context.ts';

/** The release's JSON shape: its row, and whether the instance names it as current_release. */
export function releaseReply(release: Release, row: InstanceRecord) {
  const { tenant_id: _tenant, ...rest } = release;
  return { ...rest, current: row.current_release === release.id };
}

/** GET /v1/instances/:id/releases and /:id/releases/:release (the rollback command is with the others). */
export function releaseRoutes(deps: InstanceRoutesDeps, route: RouteRegistrar): void {
  const { store, releases } = deps;

  route('get', '/:id/releases', async (req: Request, res: Response) => {
    const query = parseInput(releasesQuerySchema, req.query, 'query');
    const row = await loadOwned(store, req);
    const page = await releases.list(callerOf(req).tenant_id, row.id, query);
    res.json({
      items: page.items.map((r) => releaseReply(r, row)),
      ...(page.next_cursor ? { next_cursor: page.next_cursor } : {}),
    });
  });

  route('get', '/:id/releases/:release', async (req: Request, res: Response) => {
    const row = await loadOwned(store, req);
    const selector = releaseSelectorOf(req.params.release);
    const release = await releases.get(row.id, selector, row.tenant_id);
    if (!release) throw noSuchRelease(selector, 'release');
    res.json(releaseReply(release, row));
  });
}

function releaseSelectorOf(value: unknown): ReleaseSelector {
  const parsed = releasePathSchema.safeParse(String(value));
  if (!parsed.success) {
    throw new CtrlplaneError('invalid_request', 'release: must be a release number or a rel_ id', [
      { field: 'release', message: 'must be a release number or a rel_ id' },
    ]);
  }
  return parsed.data;
}

export function noSuchRelease(selector: ReleaseSelector, field: string): CtrlplaneError {
  const name = typeof selector === 'number' ? `v${selector}` : selector;
  return new CtrlplaneError('not_found', `the instance has no release ${name}`, [
    { field, message: `no release ${name} of this instance` },
  ]);
}
