import { servicesSchema } from '../../domain/schemas/service-spec.ts';
import { SECRET_TYPES, VARIABLE_TYPES } from '../../domain/sources/variables.ts';
import { z } from './zod.ts';

/**
 * Request (and response) schemas of a deployment source and of variables.
 * The shapes are checked here, strictly (an unknown field, or the payload of another source type, is a 400
 * naming it); the semantic rules stay in domain/sources (validateSource, validateDefinitions, resolve, render),
 * which the create route runs next. String fields may hold `{{ .path }}` templates where a render fills them.
 */

const notBlank = (s: string) => s.trim() !== '';
const text = (max: number) => z.string().max(max);
const missing = (what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? what : undefined;

export const helmSourceSchema = z
  .strictObject(
    {
      repo: z
        .union([z.literal(''), text(2048).regex(/^(https:\/\/|oci:\/\/)\S+$/i)], {
          error: 'must be an https:// or oci:// URL',
        })
        .optional()
        .openapi({
          description: 'A chart repository (an https URL) or an OCI registry (oci scheme); not templated',
        }),
      chart: text(253).refine(notBlank, 'is required').openapi({ description: 'The chart; not templated' }),
      version: text(128).optional(),
      release_name: text(253)
        .optional()
        .openapi({ description: 'A hint; releases are named after the instance' }),
      namespace: text(253).optional(),
      values: z
        .record(z.string(), z.unknown())
        .optional()
        .openapi({ description: 'Chart values; every string leaf (also inside lists) is templated' }),
      values_files: z
        .array(text(4096))
        .max(50)
        .optional()
        .openapi({ description: 'Accepted and dropped by render' }),
    },
    { error: missing('a helm source needs the helm object with a chart') },
  )
  .meta({ id: 'HelmSource' });

export const kustomizeSourceSchema = z
  .strictObject({
    files: z
      .record(text(1024), z.string())
      .refine((files) => Object.keys(files).length <= 500, 'at most 500 files')
      .openapi({ description: 'path → content (every content templated), an in-memory tree rooted at `/`' }),
    root: text(1024).optional().openapi({ description: 'The directory to build (default `/`)' }),
  })
  .meta({ id: 'KustomizeSource' });

export const manifestsSourceSchema = z
  .strictObject(
    {
      inline: z
        .string()
        .optional()
        .openapi({ description: 'Multi-document YAML, templated, then split on `---`' }),
      kustomize: kustomizeSourceSchema.optional().openapi({
        description: 'Takes precedence over inline; built with kustomize (or kubectl kustomize)',
      }),
    },
    { error: missing('a manifests source needs the manifests object with inline YAML or kustomize') },
  )
  .superRefine((m, ctx) => {
    if (m.kustomize === undefined && (m.inline === undefined || !notBlank(m.inline))) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'a manifests source needs inline YAML or kustomize',
      });
    }
  })
  .meta({ id: 'ManifestsSource' });

export const argoCDSourceSchema = z
  .strictObject(
    {
      project: text(253).optional().openapi({ description: 'Default `default`' }),
      repo_url: text(2048).refine(notBlank, 'is required'),
      path: text(4096).optional(),
      target_revision: text(253).optional(),
      dest_server: text(2048)
        .optional()
        .openapi({ description: 'Default: the cluster Argo CD runs in (kubernetes.default.svc)' }),
      dest_namespace: text(253).optional(),
      helm: z
        .strictObject({
          value_files: z.array(text(4096)).max(50).optional(),
          parameters: z.record(text(253), text(4096)).optional(),
        })
        .optional()
        .openapi({ description: 'Not templated' }),
      sync_policy: z
        .strictObject({
          automated: z.boolean().optional(),
          self_heal: z.boolean().optional(),
          prune: z.boolean().optional(),
        })
        .optional(),
    },
    { error: missing('an argocd source needs the argocd object with a repo_url') },
  )
  .meta({
    id: 'ArgoCDSource',
    description: 'project, repo_url, path, target_revision, dest_server and dest_namespace are templated',
  });

const SOURCE_TYPE_ERROR = 'must be one of services, helm, manifests, argocd';

/** `{type, <payload of that type>}`; a payload of another type is refused (it would be silently ignored). */
export const deploymentSourceSchema = z
  .discriminatedUnion(
    'type',
    [
      z
        .strictObject({
          type: z.literal('services'),
          services: servicesSchema.meta({
            description: 'image, env values, command and args are templated',
          }),
        })
        .meta({ id: 'ServicesSource' }),
      z
        .strictObject({ type: z.literal('helm'), helm: helmSourceSchema })
        .meta({ id: 'HelmDeploymentSource' }),
      z
        .strictObject({ type: z.literal('manifests'), manifests: manifestsSourceSchema })
        .meta({ id: 'ManifestsDeploymentSource' }),
      z
        .strictObject({ type: z.literal('argocd'), argocd: argoCDSourceSchema })
        .meta({ id: 'ArgoCDDeploymentSource' }),
    ],
    { error: (issue) => (issue.code === 'invalid_union' ? SOURCE_TYPE_ERROR : undefined) },
  )
  .meta({
    id: 'DeploymentSource',
    description:
      'What the instance runs: services (Docker or Kubernetes), or a helm chart, manifests or an Argo CD ' +
      'application (Kubernetes). Kept as submitted; templates are rendered at provision time only.',
  });

export type DeploymentSourceInput = z.infer<typeof deploymentSourceSchema>;

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export const variableDefinitionSchema = z
  .strictObject({
    name: text(128).regex(
      VARIABLE_NAME,
      'must be letters, digits, "_" and "-", starting with a letter or "_"',
    ),
    description: text(1024).optional(),
    type: z.enum(VARIABLE_TYPES),
    required: z.boolean().optional(),
    default: z
      .union([z.string().max(4096), z.number(), z.boolean()])
      .optional()
      .openapi({ description: 'Used when no value is given; not allowed with expression or for a secret' }),
    enum: z.array(text(1024)).max(100).optional().openapi({ description: 'The members of an enum variable' }),
    secret: z
      .strictObject({
        key: text(253).openapi({
          description:
            "A key of the caller's tenant's secrets, e.g. db/password: segments of A-Z a-z 0-9 . _ - separated by " +
            '"/" (no leading "/", no "." or ".." segment); anything else is 422 invalid_secret_key',
        }),
        type: z.enum(SECRET_TYPES).optional(),
      })
      .optional()
      .openapi({
        description:
          'A secret variable: resolved from the secret store at provision time into the env var NAME ' +
          '(upper case, "-" → "_") of every service; never stored, never templated',
      }),
    expression: text(4096)
      .optional()
      .openapi({ description: 'A computed variable, e.g. `{{ .var.sub }}.{{ .region }}.example.com`' }),
    pattern: text(1024).optional().openapi({
      description:
        'An RE2 regular expression (Go regexp syntax, linear-time matching) the value must contain a match of',
    }),
  })
  .meta({ id: 'VariableDefinition' });

export const variablesSchema = z.array(variableDefinitionSchema).max(100).openapi({
  description:
    'Template variables; the scope is {var, instance: {id, name}, tenant: {id}, region}, used as `{{ .var.x }}`',
});

export const variableValuesSchema = z
  .record(text(128), z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]))
  .refine((values) => Object.keys(values).length <= 100, 'at most 100 values')
  .openapi({
    description: 'Values of the variables by name (not of secret ones: those come from the secret store)',
  });
