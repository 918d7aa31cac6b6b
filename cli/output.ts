import type { Instance, InstanceEvent } from '../clients/typescript/client.ts';

export type OutputFormat = 'table' | 'json';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell; the header in capitals. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(header.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n')}\n`);
}

export function printInstances(instances: Instance[], format: OutputFormat): void {
  if (format === 'json') {
    printJson(instances);
    return;
  }
  printTable(
    ['id', 'name', 'state', 'provider', 'endpoints', 'created'],
    instances.map((i) => [
      i.id,
      i.name,
      i.state,
      i.provider_name,
      (i.endpoints ?? []).map((e) => e.url).join(',') || '-',
      i.created_at,
    ]),
  );
}

export function printInstance(instance: Instance, format: OutputFormat): void {
  if (format === 'json') {
    printJson(instance);
    return;
  }
  printInstances([instance], 'table');
  if (instance.error) process.stdout.write(`error: ${instance.error}\n`);
}

export function eventLine(event: InstanceEvent): string {
  const payload =
    event.payload && Object.keys(event.payload).length > 0 ? `  ${JSON.stringify(event.payload)}` : '';
  return `${event.occurred_at}  ${event.type}${payload}`;
}
