export type { ResourceDef } from './resources';
export {
  FakeKubernetes,
  type FakeKubernetesOptions,
  type Fault,
  type RecordedRequest,
  type SimulatedPods,
} from './server';
