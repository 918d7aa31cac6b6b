/** Query parameters whose value is a credential: never logged, however the name is spelt or encoded. */
const CREDENTIAL_PARAMS = new Set(['token', 'ticket', 'access_token']);

/**
 * The request line as logged: the value of a credential parameter is `[redacted]`. Names are compared as the
 * query parser reads them (`%74oken` is `token`, `token[]` is `token`), case-insensitively.
 */
export function loggedUrl(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const pairs = url
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return CREDENTIAL_PARAMS.has(parameterName(name)) ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, at)}?${pairs.join('&')}`;
}

/** The name the query parser sees: percent-decoded (leniently, like it), `+` as space, before any `[`. */
function parameterName(raw: string): string {
  const decoded = raw
    .replace(/\+/g, ' ')
    .replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return (decoded.split('[')[0] ?? '').trim().toLowerCase();
}
