import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes, upserted on every transition so the Temporal UI can filter instances. */
export const TenantIdAttribute = defineSearchAttributeKey('CtrlplaneTenantId', SearchAttributeType.KEYWORD);
export const StateAttribute = defineSearchAttributeKey('CtrlplaneState', SearchAttributeType.KEYWORD);
export const ProviderAttribute = defineSearchAttributeKey('CtrlplaneProvider', SearchAttributeType.KEYWORD);
export const SuspendedAttribute = defineSearchAttributeKey('CtrlplaneSuspended', SearchAttributeType.BOOL);

export const CTRLPLANE_SEARCH_ATTRIBUTES = [
  TenantIdAttribute,
  StateAttribute,
  ProviderAttribute,
  SuspendedAttribute,
] as const;
