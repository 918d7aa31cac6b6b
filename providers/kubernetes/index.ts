export { ARGO_API_VERSION, ARGO_RESOURCES_FINALIZER } from './argo.ts';
export {
  buildKubeConfig,
  type KubeConfigSource,
  type KubernetesProviderLogger,
  type KubernetesProviderOptions,
} from './config.ts';
export { KubernetesProvider } from './kubernetes-provider.ts';
export {
  ANNOTATION,
  envSecretName,
  LABEL,
  resourceName,
  tenantNamespace,
  trackingConfigMapName,
} from './names.ts';
