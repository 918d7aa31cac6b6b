/**
 * Variables read only by the development scripts (`npm start`, `npm test`), never by the API or the worker: they
 * are not part of the configuration schema, and are listed with it in the README's table.
 */
export interface ScriptVariable {
  name: string;
  /** Markdown; empty: none. */
  default: string;
  meaning: string;
}

export const SCRIPT_VARIABLES: readonly ScriptVariable[] = [
  {
    name: 'TEMPORAL_CLI',
    default: '',
    meaning: 'a `temporal` binary for the scripts to use instead of PATH / `.tools/bin`',
  },
  {
    name: 'TEMPORAL_UI_URL',
    default: '',
    meaning: 'the Temporal Web UI `npm start` prints when `TEMPORAL_ADDRESS` names a server of yours',
  },
  {
    name: 'CTRLPLANE_DEV_KUBERNETES',
    default: '',
    meaning:
      '`1`: `npm start` also runs the local Kubernetes control plane and registers the `kubernetes` provider',
  },
];
