import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { stringify as toYaml } from 'yaml';
/**
 * `ServiceSpec.config_files[]`: `{name, path, format: json|yaml|env|text,
 * content}`. Read defensively: a spec arriving by signal or from an old history has not been through the API.
 */
import type { ConfigFileFormat, ServiceSpec } from '../../domain/instance.ts';
import { PermanentProviderError } from '../provider.ts';
import { type TarFile, tarArchive } from './tar.ts';

export type { ConfigFileFormat, ConfigFileSpec } from '../../domain/instance.ts';

export interface RenderedConfigFile {
  /** Absolute, normalised path. */
  path: string;
  content: Buffer;
}

const FORMATS = new Set<string>(['json', 'yaml', 'env', 'text']);
const FILE_MODE = 0o644;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(service: string, message: string): PermanentProviderError {
  return new PermanentProviderError(`service ${service}: config_files: ${message}`, 'invalid_spec');
}

function render(
  service: string,
  file: string,
  format: ConfigFileFormat | undefined,
  content: unknown,
): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  switch (format) {
    case 'json':
      return `${JSON.stringify(content, null, 2)}\n`;
    case 'yaml':
      return toYaml(content);
    case 'env':
      if (!isRecord(content)) throw invalid(service, `${file}: env content must be a string or an object`);
      return Object.entries(content)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}\n`)
        .join('');
    default:
      throw invalid(service, `${file}: content must be a string (format ${format ?? 'text'})`);
  }
}

/** The service's config files, validated and rendered. Anything malformed → PermanentProviderError. */
export function configFilesOf(service: ServiceSpec): RenderedConfigFile[] {
  const raw: unknown = service.config_files;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid(service.name, 'must be a list');

  const out: RenderedConfigFile[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, index) => {
    if (!isRecord(entry)) throw invalid(service.name, `entry ${index} is not an object`);
    const name = typeof entry.name === 'string' ? entry.name : '';
    const rawPath = entry.path;
    const label = name || `entry ${index}`;
    if (typeof rawPath !== 'string' || !rawPath.startsWith('/')) {
      throw invalid(service.name, `${label}: path must be an absolute path`);
    }
    if (rawPath.includes('\0') || rawPath.split('/').some((seg) => seg === '..' || seg === '.')) {
      throw invalid(service.name, `${label}: path "${rawPath}" must not contain '.' or '..' segments`);
    }
    let path = rawPath;
    if (path.endsWith('/')) {
      if (!name || name.includes('/')) {
        throw invalid(
          service.name,
          `${label}: path "${rawPath}" is a directory and the name is not a file name`,
        );
      }
      path = `${path}${name}`;
    }
    path = posix.normalize(path);
    if (path === '/') throw invalid(service.name, `${label}: path must name a file`);

    const format = entry.format;
    if (format !== undefined && format !== null && format !== '' && !FORMATS.has(String(format))) {
      throw invalid(service.name, `${label}: format "${String(format)}" is not one of json, yaml, env, text`);
    }
    const fmt = format ? (format as ConfigFileFormat) : undefined;
    if (seen.has(path)) throw invalid(service.name, `path ${path} is used twice`);
    seen.add(path);
    out.push({ path, content: Buffer.from(render(service.name, label, fmt, entry.content), 'utf8') });
  });
  return out;
}

/** What of the config files goes into the spec hash: paths and content digests (not the content itself). */
export function configFilesDigest(
  files: readonly RenderedConfigFile[],
): Array<{ path: string; sha256: string }> {
  return files.map((f) => ({ path: f.path, sha256: createHash('sha256').update(f.content).digest('hex') }));
}

/** A tar of the files, to extract at `/` in the container. */
export function configFilesArchive(files: readonly RenderedConfigFile[]): Buffer {
  const entries: TarFile[] = files.map((f) => ({
    path: f.path.replace(/^\/+/, ''),
    content: f.content,
    mode: FILE_MODE,
    mtime: Math.floor(Date.now() / 1000),
  }));
  return tarArchive(entries);
}
