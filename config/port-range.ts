/** An inclusive range of TCP/UDP ports, e.g. the host ports the operator lets Docker instances publish on. */
export interface PortRange {
  first: number;
  last: number;
}

/** `30000-32767` (or a single port `8080`) → PortRange; a message when it is not a valid range. */
export function parsePortRange(text: string): PortRange | { problem: string } {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  if (!match) return { problem: 'must be a port range such as 30000-32767' };
  const first = Number(match[1]);
  const last = Number(match[2] ?? match[1]);
  if (first < 1 || last > 65535 || first > last) {
    return { problem: 'must be a range of ports between 1 and 65535, the first not above the last' };
  }
  return { first, last };
}

export function formatPortRange(range: PortRange): string {
  return range.first === range.last ? String(range.first) : `${range.first}-${range.last}`;
}
