import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so the Temporal UI can filter instances: tenant and provider are set when the API
 * starts the workflow, state and suspension are upserted with every change the workflow records.
 */
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
