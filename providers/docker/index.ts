export type { ConfigFileFormat, ConfigFileSpec } from './config-files.ts';
export { DockerProvider, type DockerProviderLogger, type DockerProviderOptions } from './docker-provider.ts';
export type { RegistryAuth } from './images.ts';
export { LABEL } from './labels.ts';
export { containerName, networkName, projectName, providerRef } from './naming.ts';
export { volumeName } from './volumes.ts';
