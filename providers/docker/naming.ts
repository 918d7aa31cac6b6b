/** Docker object names for an instance: one "compose-like project" per instance. */

/** Docker's own rule for container names; service names become part of one, and a DNS alias. */
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export const PROVIDER_REF_PREFIX = 'docker:';

/** `cp-<instanceId>` (the underscore of a typeid is kept). */
export function projectName(instanceId: string): string {
  return `cp-${instanceId}`;
}

/** `cp-<instanceId>-net`, the project's bridge network. */
export function networkName(instanceId: string): string {
  return `${projectName(instanceId)}-net`;
}

/** `cp-<instanceId>-<serviceName>`; the service is also reachable as `<serviceName>` on the project network. */
export function containerName(instanceId: string, serviceName: string): string {
  return `${projectName(instanceId)}-${serviceName}`;
}

/** `docker:cp-<instanceId>`, the instance's provider_ref. */
export function providerRef(instanceId: string): string {
  return PROVIDER_REF_PREFIX + projectName(instanceId);
}

export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}
