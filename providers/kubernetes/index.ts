export { ARGO_API_VERSION, ARGO_RESOURCES_FINALIZER } from './argo';
export {
  buildKubeConfig,
  type KubeConfigSource,
  type KubernetesProviderLogger,
  type KubernetesProviderOptions,
} from './config';
export { kubernetesOptionsFromEnv, kubernetesProviderFromEnv } from './from-env';
export { KubernetesProvider } from './kubernetes-provider';
export {
  ANNOTATION,
  envSecretName,
  LABEL,
  resourceName,
  tenantNamespace,
  trackingConfigMapName,
} from './names';
