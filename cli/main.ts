import { createCtrlplaneClient } from '../clients/typescript/client.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { INSTANCES_USAGE, instancesCommand } from './instances.ts';
import type { OutputFormat } from './output.ts';

const USAGE = `ctrlplane: the ctrlplane API from the command line

  ctrlplane [-o table|json] [--url URL] instances <command> ...

Environment: CTRLPLANE_URL (default http://localhost:8080), CTRLPLANE_TOKEN (a Bearer token).
Exit codes: 0 ok, 1 other error, 2 usage, 3 unauthorized/forbidden, 4 not found, 5 refused (400/409/412/422),
6 instance failed, 7 timed out, 8 API unavailable (retry later).

${INSTANCES_USAGE}`;

/** Global flags may come anywhere; the first two positionals are the resource and the command. */
function splitGlobal(argv: string[]): {
  output: OutputFormat;
  url: string | undefined;
  rest: string[];
  help: boolean;
} {
  let output: OutputFormat = 'table';
  let url: string | undefined;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new CliError(EXIT.usage, `${arg} needs a value`);
      return next;
    };
    if (arg === '-o' || arg === '--output') output = outputFormat(value());
    else if (arg.startsWith('--output=')) output = outputFormat(arg.slice('--output='.length));
    else if (arg === '--url') url = value();
    else if (arg.startsWith('--url=')) url = arg.slice('--url='.length);
    else if (arg === '-h' || arg === '--help') help = true;
    else rest.push(arg);
  }
  return { output, url, rest, help };
}

function outputFormat(text: string): OutputFormat {
  if (text === 'table' || text === 'json') return text;
  throw new CliError(EXIT.usage, `-o: table or json, not ${JSON.stringify(text)}`);
}

async function main(argv: string[]): Promise<number> {
  const { output, url, rest, help } = splitGlobal(argv);
  const [resource, verb, ...args] = rest;
  if (help || !resource) {
    process.stdout.write(`${USAGE}\n`);
    return help ? EXIT.ok : EXIT.usage;
  }
  if (resource !== 'instances' && resource !== 'instance' && resource !== 'i') {
    throw new CliError(EXIT.usage, `unknown resource: ${resource}\n${USAGE}`);
  }
  const interrupted = new AbortController();
  process.once('SIGINT', () => interrupted.abort());
  process.once('SIGTERM', () => interrupted.abort());
  const baseUrl = url ?? process.env.CTRLPLANE_URL ?? 'http://localhost:8080';
  const token = process.env.CTRLPLANE_TOKEN;
  const api = createCtrlplaneClient({ baseUrl, ...(token ? { token } : {}) });
  await instancesCommand({ api, output, signal: interrupted.signal }, verb, args);
  return EXIT.ok;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof CliError) {
      process.stderr.write(`ctrlplane: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`ctrlplane: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = EXIT.error;
    }
  },
);
