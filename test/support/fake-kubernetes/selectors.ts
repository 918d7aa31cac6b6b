/** Label selectors as the API server reads `?labelSelector=`: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`. */

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };

export class SelectorError extends Error {}

function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

export function parseSelector(selector: string | null | undefined): Requirement[] {
  if (!selector) return [];
  return splitTopLevel(selector).map((part): Requirement => {
    let m = /^(\S+?)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) return { op: m[2] === '!=' ? 'neq' : 'eq', key: m[1] ?? '', value: m[3] ?? '' };
    m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = (m[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
      return { op: m[2] === 'in' ? 'in' : 'notin', key: m[1] ?? '', values };
    }
    m = /^!\s*(\S+)$/.exec(part);
    if (m) return { op: 'absent', key: m[1] ?? '' };
    if (/^[A-Za-z0-9./_-]+$/.test(part)) return { op: 'exists', key: part };
    throw new SelectorError(`unable to parse requirement: ${part}`);
  });
}

export function matches(requirements: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const value = l[r.key];
    switch (r.op) {
      case 'eq':
        return has && value === r.value;
      case 'neq':
        return !has || value !== r.value;
      case 'in':
        return has && r.values.includes(value ?? '');
      case 'notin':
        return !has || !r.values.includes(value ?? '');
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
    return false;
  });
}

/** `metadata.name=x,metadata.namespace=y` (the only field selectors the fake knows). */
export function matchesFields(
  selector: string | null | undefined,
  obj: { metadata?: Record<string, unknown> },
) {
  if (!selector) return true;
  return selector.split(',').every((part) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(part.trim());
    if (!m) throw new SelectorError(`invalid field selector: ${part}`);
    const [, field, op, expected] = m;
    const actual =
      field === 'metadata.name'
        ? obj.metadata?.name
        : field === 'metadata.namespace'
          ? obj.metadata?.namespace
          : undefined;
    if (actual === undefined) throw new SelectorError(`field label not supported: ${field}`);
    return op === '!=' ? actual !== expected : actual === expected;
  });
}
