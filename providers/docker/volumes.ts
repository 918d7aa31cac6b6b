import type Dockerode from 'dockerode';
import type { ServiceSpec, VolumeSpec } from '../../domain/instance.ts';
import { PermanentProviderError } from '../provider.ts';
import { LABEL, type LabelContext, projectLabels } from './labels.ts';
import { isValidServiceName, projectName } from './naming.ts';

/** `cp-<instanceId>-<volume>`: services of one instance that name the same volume share it. */
export function volumeName(instanceId: string, volume: string): string {
  return `${projectName(instanceId)}-${volume}`;
}

/** Labels of a project volume: the project's labels plus `ctrlplane.volume=<name>`. */
export function volumeLabels(ctx: LabelContext, volume: string): Record<string, string> {
  return { ...projectLabels(ctx), [LABEL.volume]: volume };
}

export function validateVolumes(service: ServiceSpec): void {
  const targets = new Set<string>();
  for (const volume of service.volumes ?? []) {
    if (!volume || typeof volume.name !== 'string' || !isValidServiceName(volume.name)) {
      throw new PermanentProviderError(
        `service ${service.name}: volume name "${String(volume?.name)}" is not valid`,
        'invalid_spec',
      );
    }
    const target = volume.mount_path;
    if (typeof target !== 'string' || !target.startsWith('/') || target === '/') {
      throw new PermanentProviderError(
        `service ${service.name}: volume ${volume.name}: mount_path must be an absolute path other than /`,
        'invalid_spec',
      );
    }
    const normalised = target.replace(/\/+$/, '');
    if (targets.has(normalised)) {
      throw new PermanentProviderError(
        `service ${service.name}: mount_path ${target} is used by two volumes`,
        'invalid_spec',
      );
    }
    targets.add(normalised);
  }
}

/** The service's volume mounts. `size_mb` and `type` are not honoured: the local driver has no size limit. */
export function volumeMounts(
  instanceId: string,
  volumes: readonly VolumeSpec[] | undefined,
): Dockerode.MountSettings[] {
  return (volumes ?? []).map((v) => ({
    Type: 'volume',
    Source: volumeName(instanceId, v.name),
    Target: v.mount_path,
  }));
}

/** The distinct volume names used by any of the services. */
export function distinctVolumes(services: readonly ServiceSpec[]): string[] {
  return [...new Set(services.flatMap((s) => (s.volumes ?? []).map((v) => v.name)))];
}
