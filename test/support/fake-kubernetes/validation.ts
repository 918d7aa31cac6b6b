import { deepEqual, isObject, type Json, type JsonObject } from './merge.ts';

/**
 * The part of the API server's validation the fake reproduces, so "422 Invalid" is exercised for real: object
 * names, label syntax, pod templates (containers, names, images, ports, quantities), workload selectors against
 * template labels, immutable fields (Deployment/StatefulSet selector, Service clusterIP, the StatefulSet fields
 * Kubernetes forbids changing) and Service ports. Real validation checks far more.
 */

export interface FieldError {
  field: string;
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';
  message: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUANTITY = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Kinds whose names must be DNS labels rather than subdomains. */
const LABEL_NAMED = new Set(['Namespace', 'Service']);

function invalid(field: string, value: unknown, detail: string): FieldError {
  return { field, type: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}` };
}

function required(field: string): FieldError {
  return { field, type: 'FieldValueRequired', message: 'Required value' };
}

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

function arr(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}

function validateLabels(labels: Json | undefined, field: string, errors: FieldError[]): void {
  for (const [key, value] of Object.entries(obj(labels))) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (
      (prefix && (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253)) ||
      !LABEL_NAME.test(name) ||
      name.length > 63
    ) {
      errors.push(
        invalid(
          field,
          key,
          "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      errors.push(
        invalid(
          `${field}`,
          value,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
    }
  }
}

function validateResources(resources: Json | undefined, field: string, errors: FieldError[]): void {
  for (const part of ['requests', 'limits']) {
    for (const [name, q] of Object.entries(obj(obj(resources)[part]))) {
      if (typeof q !== 'number' && (typeof q !== 'string' || !QUANTITY.test(q))) {
        errors.push(invalid(`${field}.${part}[${name}]`, q, 'must be a valid quantity'));
      }
    }
  }
}

function validatePodSpec(spec: Json | undefined, field: string, errors: FieldError[]): void {
  const s = obj(spec);
  const containers = arr(s.containers);
  if (containers.length === 0) errors.push(required(`${field}.containers`));
  const names = new Set<string>();
  const check = (list: Json[], listField: string) => {
    list.forEach((raw, i) => {
      const c = obj(raw);
      const f = `${listField}[${i}]`;
      const name = c.name;
      if (typeof name !== 'string' || !name) errors.push(required(`${f}.name`));
      else if (!DNS_LABEL.test(name) || name.length > 63)
        errors.push(invalid(`${f}.name`, name, 'a lowercase RFC 1123 label'));
      else if (names.has(name))
        errors.push({
          field: `${f}.name`,
          type: 'FieldValueDuplicate',
          message: `Duplicate value: "${name}"`,
        });
      else names.add(name);
      if (typeof c.image !== 'string' || !c.image.trim()) errors.push(required(`${f}.image`));
      arr(c.ports).forEach((p, j) => {
        const port = obj(p).containerPort;
        if (typeof port !== 'number' || port < 1 || port > 65535) {
          errors.push(
            invalid(`${f}.ports[${j}].containerPort`, port, 'must be between 1 and 65535, inclusive'),
          );
        }
      });
      validateResources(c.resources, `${f}.resources`, errors);
    });
  };
  check(arr(s.initContainers), `${field}.initContainers`);
  check(containers, `${field}.containers`);
}

function selectorMatches(selector: JsonObject, labels: JsonObject): boolean {
  return Object.entries(obj(selector.matchLabels)).every(([k, v]) => labels[k] === v);
}

const STATEFULSET_MUTABLE = new Set([
  'replicas',
  'ordinals',
  'template',
  'updateStrategy',
  'persistentVolumeClaimRetentionPolicy',
  'minReadySeconds',
]);

/** Problems with `next` (and, on update, with the change from `previous`). */
export function validate(kind: string, next: JsonObject, previous?: JsonObject): FieldError[] {
  const errors: FieldError[] = [];
  const metadata = obj(next.metadata);
  const name = metadata.name;
  if (typeof name !== 'string' || !name) {
    errors.push(required('metadata.name'));
  } else if (
    LABEL_NAMED.has(kind)
      ? !DNS_LABEL.test(name) || name.length > 63
      : !DNS_SUBDOMAIN.test(name) || name.length > 253
  ) {
    errors.push(
      invalid(
        'metadata.name',
        name,
        `a lowercase RFC 1123 ${LABEL_NAMED.has(kind) ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      ),
    );
  }
  validateLabels(metadata.labels, 'metadata.labels', errors);

  const spec = obj(next.spec);
  if (kind === 'Pod') validatePodSpec(next.spec, 'spec', errors);
  if (kind === 'Deployment' || kind === 'StatefulSet' || kind === 'ReplicaSet' || kind === 'DaemonSet') {
    const template = obj(spec.template);
    const templateLabels = obj(obj(template.metadata).labels);
    validateLabels(templateLabels, 'spec.template.metadata.labels', errors);
    validatePodSpec(template.spec, 'spec.template.spec', errors);
    const selector = obj(spec.selector);
    if (Object.keys(selector).length === 0) errors.push(required('spec.selector'));
    else if (!selectorMatches(selector, templateLabels)) {
      errors.push(
        invalid(
          'spec.template.metadata.labels',
          templateLabels,
          '`selector` does not match template `labels`',
        ),
      );
    }
    if (typeof spec.replicas === 'number' && spec.replicas < 0) {
      errors.push(invalid('spec.replicas', spec.replicas, 'must be greater than or equal to 0'));
    }
    if (previous && !deepEqual(obj(previous.spec).selector, spec.selector)) {
      errors.push(invalid('spec.selector', spec.selector, 'field is immutable'));
    }
    if (kind === 'StatefulSet') {
      arr(spec.volumeClaimTemplates).forEach((t, i) => {
        validateResources(
          obj(obj(t).spec).resources,
          `spec.volumeClaimTemplates[${i}].spec.resources`,
          errors,
        );
      });
      if (previous) {
        const before = obj(previous.spec);
        const changed = new Set([...Object.keys(before), ...Object.keys(spec)]);
        const forbidden = [...changed].filter(
          (k) => !STATEFULSET_MUTABLE.has(k) && !deepEqual(before[k], spec[k]),
        );
        if (forbidden.length > 0) {
          errors.push({
            field: 'spec',
            type: 'FieldValueForbidden',
            message: `Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden (changed: ${forbidden.join(', ')})`,
          });
        }
      }
    }
  }
  if (kind === 'Service') {
    const ports = arr(spec.ports);
    const portNames = new Set<string>();
    ports.forEach((p, i) => {
      const port = obj(p);
      if (typeof port.port !== 'number' || port.port < 1 || port.port > 65535) {
        errors.push(invalid(`spec.ports[${i}].port`, port.port, 'must be between 1 and 65535, inclusive'));
      }
      if (ports.length > 1 && (typeof port.name !== 'string' || !port.name))
        errors.push(required(`spec.ports[${i}].name`));
      if (typeof port.name === 'string' && port.name) {
        if (!DNS_LABEL.test(port.name) || port.name.length > 63)
          errors.push(invalid(`spec.ports[${i}].name`, port.name, 'a lowercase RFC 1123 label'));
        if (portNames.has(port.name))
          errors.push({
            field: `spec.ports[${i}].name`,
            type: 'FieldValueDuplicate',
            message: `Duplicate value: "${port.name}"`,
          });
        portNames.add(port.name);
      }
    });
    const before = obj(previous?.spec).clusterIP;
    if (
      previous &&
      typeof before === 'string' &&
      before &&
      spec.clusterIP !== undefined &&
      spec.clusterIP !== before
    ) {
      errors.push(invalid('spec.clusterIPs[0]', spec.clusterIP, 'may not change once set'));
    }
  }
  if (kind === 'ConfigMap' || kind === 'Secret') {
    for (const key of Object.keys(obj(next.data))) {
      if (!CONFIG_KEY.test(key))
        errors.push(
          invalid(
            `data[${key}]`,
            key,
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
          ),
        );
    }
  }
  return errors;
}
