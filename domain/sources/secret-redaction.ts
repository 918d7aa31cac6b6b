/**
 * Takes resolved secret values out of text a workload produced (an init service's last log lines, health-check
 * output, a provider's message) before that text becomes an instance error, an event, a status, a Temporal
 * payload or a log line. The provider activities build one from the values they resolved; nothing else ever
 * holds the values. Plain TS.
 *
 * What is hidden: every occurrence of a value; its JSON-escaped form (a container printing its environment as
 * JSON); and, for a value of several lines, each of its lines of MIN_LINE_LENGTH characters or more (output is
 * quoted line by line, and a tail may start in the middle of the value). Overlapping occurrences are hidden as
 * one. A value of any length is hidden, even one so short that most text around it is replaced.
 */

export interface ResolvedSecret {
  /** The variable's name, shown in the marker. */
  var_name: string;
  value: string;
}

const MIN_LINE_LENGTH = 4;

export function redactionMarker(varName: string): string {
  return `[redacted secret ${varName}]`;
}

interface Needle {
  text: string;
  marker: string;
}

export class SecretRedactor {
  /** Redacts nothing: for calls of an instance without secret variables. */
  static readonly none = new SecretRedactor([]);

  /** For a call whose secrets could not be read: provider text is replaced as a whole, since it cannot be checked. */
  static withholding(reason: string): SecretRedactor {
    return new SecretRedactor([], `(provider output withheld: ${reason})`);
  }

  private readonly needles: Needle[];

  private constructor(
    secrets: readonly ResolvedSecret[],
    private readonly withheld?: string,
  ) {
    const needles = new Map<string, string>();
    for (const { var_name, value } of secrets) {
      if (value === '') continue;
      const marker = redactionMarker(var_name);
      const forms = [value, JSON.stringify(value).slice(1, -1)];
      if (/[\r\n]/.test(value)) {
        forms.push(...value.split(/\r?\n|\r/).filter((line) => line.trim().length >= MIN_LINE_LENGTH));
      }
      for (const form of forms) if (!needles.has(form)) needles.set(form, marker);
    }
    this.needles = [...needles].map(([text, marker]) => ({ text, marker }));
  }

  static of(secrets: readonly ResolvedSecret[]): SecretRedactor {
    return secrets.some((s) => s.value !== '') ? new SecretRedactor(secrets) : SecretRedactor.none;
  }

  /** Whether this redactor changes anything (an instance with secrets, or withheld output). */
  get active(): boolean {
    return this.needles.length > 0 || this.withheld !== undefined;
  }

  redact(text: string): string {
    if (this.withheld !== undefined) return text === '' ? text : this.withheld;
    if (this.needles.length === 0 || text === '') return text;
    const hits: { start: number; end: number; marker: string }[] = [];
    for (const needle of this.needles) {
      for (let at = text.indexOf(needle.text); at !== -1; at = text.indexOf(needle.text, at + 1)) {
        hits.push({ start: at, end: at + needle.text.length, marker: needle.marker });
      }
    }
    if (hits.length === 0) return text;
    hits.sort((a, b) => a.start - b.start || b.end - a.end);
    let out = '';
    let cursor = 0;
    for (const hit of hits) {
      if (hit.start >= cursor) {
        out += text.slice(cursor, hit.start) + hit.marker;
        cursor = hit.end;
      } else if (hit.end > cursor) {
        cursor = hit.end; // overlaps the hidden span before it: hide its tail too
      }
    }
    return out + text.slice(cursor);
  }
}
