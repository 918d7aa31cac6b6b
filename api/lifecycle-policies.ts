import type { Instance } from '../domain/instance.ts';
import type { CreateInstanceRequest } from './schemas/instance-requests.ts';

/** The lifecycle policies a create request gives, as the new instance carries them. */
export function policiesOf(
  body: CreateInstanceRequest,
): Pick<Instance, 'auto_stop' | 'auto_delete' | 'expires_at' | 'schedule'> {
  return {
    ...(body.auto_stop ? { auto_stop: body.auto_stop } : {}),
    ...(body.auto_delete ? { auto_delete: body.auto_delete } : {}),
    ...(body.expires_at ? { expires_at: new Date(body.expires_at).toISOString() } : {}),
    ...(body.schedule ? { schedule: body.schedule } : {}),
  };
}
