import type { ConfigProblem } from './config-error.ts';

/**
 * Variables that are no longer read. A process started with one set stops with a line naming what to do, instead
 * of silently running without the setting the operator meant.
 */
const RETIRED: Record<string, string> = {
  CP_K8S_ARGO_PROJECT:
    'is no longer read: each tenant gets an AppProject of its own (set CTRLPLANE_K8S_ARGO_REPOS to enable Argo CD)',
  CTRLPLANE_SECRET_STORE_PER_TENANT:
    "is no longer read: secret keys are always scoped to the instance's tenant; remove it (see the README on naming a tenant's secrets)",
};

/** The Kubernetes variables were `CP_K8S_*` before every setting took the one prefix `CTRLPLANE_`. */
const RENAMED_PREFIX = { from: 'CP_K8S_', to: 'CTRLPLANE_K8S_' } as const;

/** One problem per retired or renamed variable set in `env`. */
export function retiredVariables(env: Readonly<Record<string, string | undefined>>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (env[variable] === undefined) continue;
    const retired = RETIRED[variable];
    if (retired) problems.push({ variable, message: retired });
    else if (variable.startsWith(RENAMED_PREFIX.from)) {
      const renamed = RENAMED_PREFIX.to + variable.slice(RENAMED_PREFIX.from.length);
      problems.push({ variable, message: `is no longer read: it was renamed ${renamed}; set that instead` });
    }
  }
  return problems;
}
