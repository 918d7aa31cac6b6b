import { z } from 'zod';

/**
 * Schemas of the ServiceSpec family (domain/instance.ts), shared by the API's request validation and the instance
 * workflow's command validators. Plain zod with `.meta()`, so they bundle into workflow code. Objects are strict:
 * an unknown field is refused, naming it.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const serviceNameSchema = z
  .string()
  .max(63)
  .regex(DNS_LABEL, 'must be a DNS label: lowercase letters, digits and dashes');

const int = () => z.number().int();

/** The text outside `{{ … }}` templates (spaces inside a template are allowed: `{{ .var.tag }}`). */
export function withoutTemplates(text: string): string {
  return text.replace(/\{\{[^{}]*\}\}/g, '');
}

export const resourceSpecSchema = z
  .strictObject({
    cpu_millis: int()
      .min(0)
      .max(1_000_000)
      .default(0)
      .meta({ description: "0: the provider's default. Docker: at most CTRLPLANE_DOCKER_MAX_CPU_MILLIS" }),
    memory_mb: int()
      .min(0)
      .max(16_777_216)
      .default(0)
      .meta({ description: "0: the provider's default. Docker: at most CTRLPLANE_DOCKER_MAX_MEMORY_MB" }),
    disk_mb: int().min(0).optional(),
    replicas: int().min(1).max(1000).default(1),
    gpu: int().min(0).optional(),
  })
  .meta({ id: 'ResourceSpec' });

export const portSpecSchema = z
  .strictObject({
    container: int().min(1).max(65535),
    host: int().min(0).max(65535).optional().meta({
      description: 'Docker: within CTRLPLANE_DOCKER_HOST_PORT_RANGE; absent or 0: a free port of it',
    }),
    protocol: z.enum(['tcp', 'udp', 'sctp', 'TCP', 'UDP', 'SCTP']).optional(),
  })
  .meta({ id: 'PortSpec' });

export const volumeSpecSchema = z
  .strictObject({
    name: serviceNameSchema,
    mount_path: z.string().startsWith('/', 'must be an absolute path').max(4096),
    size_mb: int()
      .min(0)
      .optional()
      .meta({ description: 'Docker: refused (400), its local volume driver cannot enforce a size' }),
    type: z.string().max(64).optional(),
  })
  .meta({ id: 'VolumeSpec' });

export const healthCheckSchema = z
  .strictObject({
    path: z.string().max(2048).optional(),
    port: int().min(1).max(65535),
    interval: int().min(0).optional(),
    timeout: int().min(0).optional(),
    retries: int().min(0).max(100).optional(),
  })
  .meta({ id: 'HealthCheckSpec' });

/** `{name, path, format, content}`: `path` absolute (ending in `/`: a directory, `name` the file in it). */
export const configFileSchema = z
  .strictObject({
    name: z.string().max(255),
    path: z.string().startsWith('/', 'must be an absolute path').max(4096),
    format: z.enum(['json', 'yaml', 'env', 'text']).optional(),
    content: z
      .unknown()
      .meta({ description: 'Text, or for json, yaml and env a value rendered in that format' }),
  })
  .superRefine((file, ctx) => {
    if (file.path.split('/').some((segment) => segment === '.' || segment === '..')) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: "must not contain '.' or '..' segments" });
    }
    if (file.path.endsWith('/') && (file.name === '' || file.name.includes('/'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['name'],
        message: 'must be a file name when path is a directory',
      });
    }
    if (file.path === '/') ctx.addIssue({ code: 'custom', path: ['path'], message: 'must name a file' });
    const content = file.content;
    const isText = content === undefined || content === null || typeof content === 'string';
    const isObject = typeof content === 'object' && content !== null && !Array.isArray(content);
    if (!isText && file.format === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['content'],
        message: 'must be a string unless format is json, yaml or env',
      });
    }
    if (!isText && file.format === 'text') {
      ctx.addIssue({ code: 'custom', path: ['content'], message: 'must be a string for format text' });
    }
    if (!isText && !isObject && file.format === 'env') {
      ctx.addIssue({
        code: 'custom',
        path: ['content'],
        message: 'must be a string or an object for format env',
      });
    }
  })
  .meta({ id: 'ConfigFileSpec' });

export const secretRefSchema = z
  .strictObject({
    key: z.string().min(1).max(253),
    type: z.enum(['env', 'file', 'registry', 'tls']),
  })
  .meta({ id: 'SecretRef' });

export const serviceSpecSchema = z
  .strictObject({
    name: serviceNameSchema,
    image: z
      .string()
      .min(1)
      .max(512)
      .refine((image) => !/\s/.test(withoutTemplates(image)), 'must not contain spaces')
      .meta({
        description: 'May hold `{{ .path }}` templates (e.g. `nginx:{{ .var.tag }}`), rendered at provision',
      }),
    role: z.enum(['main', 'sidecar', 'init', '']).optional(),
    depends_on: z.array(serviceNameSchema).max(20).optional(),
    resources: resourceSpecSchema.default({ cpu_millis: 0, memory_mb: 0, replicas: 1 }),
    env: z
      .record(
        z.string().regex(ENV_KEY, 'must be a valid environment variable name').max(256),
        z.string().max(32_768),
      )
      .refine((env) => Object.keys(env).length <= 200, 'at most 200 variables')
      .optional(),
    ports: z.array(portSpecSchema).max(50).optional(),
    volumes: z.array(volumeSpecSchema).max(20).optional(),
    health_check: healthCheckSchema.optional(),
    command: z.array(z.string().max(4096)).max(100).optional(),
    args: z.array(z.string().max(4096)).max(100).optional(),
    annotations: z
      .record(z.string().max(253), z.string().max(4096))
      .refine((a) => Object.keys(a).length <= 64, 'at most 64 annotations')
      .optional(),
    config_files: z
      .array(configFileSchema)
      .max(50)
      .superRefine((files, ctx) => {
        const paths = new Set<string>();
        files.forEach((f, i) => {
          const path = f.path.endsWith('/') ? `${f.path}${f.name}` : f.path;
          if (paths.has(path))
            ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `${path} is used twice` });
          paths.add(path);
        });
      })
      .optional(),
    secrets: z.array(secretRefSchema).max(50).optional(),
  })
  .meta({ id: 'ServiceSpec' });

export type ServiceSpecInput = z.infer<typeof serviceSpecSchema>;

/** Cross-service rules: unique names, exactly one main, depends_on names a sibling that is not itself. */
export const servicesSchema = z
  .array(serviceSpecSchema)
  .min(1, 'at least one service is required')
  .max(20)
  .superRefine((services, ctx) => {
    const names = new Set<string>();
    services.forEach((service, index) => {
      if (names.has(service.name)) {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `duplicate service name ${service.name}`,
        });
      }
      names.add(service.name);
    });
    const mains = services.filter((s) => s.role === undefined || s.role === '' || s.role === 'main');
    if (mains.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `exactly one main service is required, found ${mains.length}`,
      });
    }
    services.forEach((service, index) => {
      service.depends_on?.forEach((dep, depIndex) => {
        if (dep === service.name || !names.has(dep)) {
          ctx.addIssue({
            code: 'custom',
            path: [index, 'depends_on', depIndex],
            message: `depends on unknown service ${dep}`,
          });
        }
      });
    });
  });
