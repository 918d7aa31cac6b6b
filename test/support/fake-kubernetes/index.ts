export type { ResourceDef } from './resources.ts';
export {
  FakeKubernetes,
  type FakeKubernetesOptions,
  type Fault,
  type RecordedRequest,
  type SimulatedPods,
} from './server.ts';
