export type { ConfigFileFormat, ConfigFileSpec } from './config-files';
export { DockerProvider, type DockerProviderLogger, type DockerProviderOptions } from './docker-provider';
export type { RegistryAuth } from './images';
export { LABEL } from './labels';
export { containerName, networkName, projectName, providerRef } from './naming';
export { volumeName } from './volumes';
