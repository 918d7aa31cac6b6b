export { DockerProvider, type DockerProviderLogger, type DockerProviderOptions } from './docker-provider';
export { LABEL } from './labels';
export { containerName, networkName, projectName, providerRef } from './naming';
