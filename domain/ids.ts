import { TypeID, typeid } from 'typeid-js';

export const INSTANCE_ID_PREFIX = 'inst';

export function newInstanceId(): string {
  return typeid(INSTANCE_ID_PREFIX).toString();
}

/** True for a well-formed `inst_` TypeID; anything else can never name an instance. */
export function isInstanceId(value: string): boolean {
  try {
    return TypeID.fromString(value).getType() === INSTANCE_ID_PREFIX;
  } catch {
    return false;
  }
}
