import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type {
  CreateInstanceBody,
  CtrlplaneClient,
  Instance,
  InstanceEvent,
  LogLine,
} from '../clients/typescript/client.ts';
import { type CliContext, causeOf, must, parse } from './command-support.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { eventLine, printInstance, printInstances, printJson, printTable } from './output.ts';
import { ProgressLine } from './progress.ts';
import { RELEASES_USAGE, releasesCommand } from './releases.ts';

export const INSTANCES_USAGE = `ctrlplane instances <command> [flags]   (global: -o table|json, --url URL; token: CTRLPLANE_TOKEN)

  create -f spec.yaml [--wait] [--timeout 120s]   create (YAML or JSON; - reads stdin); --wait shows each transition
  list [--state S] [--label k=v]                   instances of the token's tenant, newest first
  get ID
  wait ID [--state running] [--timeout 60s]
  start|stop|restart|delete ID [--wait]            stop also takes [--signal SIGINT] [--timeout SECONDS]
  restart-service ID SERVICE [--wait]              restart one service's container
  exec ID [--service NAME] [--timeout SECONDS] -- COMMAND ARGS...   stdin is passed on when it is not a terminal
  scale ID [--cpu-millis N] [--memory-mb N] [--replicas N] [--wait]
  logs ID [-f] [--service NAME] [--tail N] [--since 5m]
  events ID [-f]
${RELEASES_USAGE}`;

const POLL_MS = 300;

function durationMs(text: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match)
    throw new CliError(
      EXIT.usage,
      `${flag}: a duration such as 30s, 2m or 500ms, not ${JSON.stringify(text)}`,
    );
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text))
    throw new CliError(EXIT.usage, `${flag}: a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

function oneId(positionals: string[], verb: string): string {
  const [id, ...rest] = positionals;
  if (!id || rest.length > 0) throw new CliError(EXIT.usage, `usage: ctrlplane instances ${verb} ID`);
  return id;
}

function readSpec(path: string): CreateInstanceBody {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.usage, `-f ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let spec: unknown;
  try {
    spec = parseYaml(text);
  } catch (err) {
    throw new CliError(
      EXIT.usage,
      `-f ${path}: not YAML or JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new CliError(
      EXIT.usage,
      `-f ${path}: must hold one instance spec (a mapping with name and services)`,
    );
  }
  // The API checks every field and names the wrong ones (exit 5).
  return spec as CreateInstanceBody;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** The instance's events after `seen`, following next_cursor (the cursor is opaque: the page is asked again). */
class EventFollower {
  private pageCursor: string | undefined;
  private lastSeq = -1;

  constructor(
    private readonly api: CtrlplaneClient,
    private readonly id: string,
  ) {}

  async next(): Promise<InstanceEvent[]> {
    const fresh: InstanceEvent[] = [];
    for (;;) {
      const { data } = await must(
        this.api.GET('/v1/instances/{id}/events', {
          params: {
            path: { id: this.id },
            query: { limit: 200, ...(this.pageCursor ? { cursor: this.pageCursor } : {}) },
          },
        }),
        'events',
      );
      for (const event of data.items) {
        if (event.seq <= this.lastSeq) continue;
        this.lastSeq = event.seq;
        fresh.push(event);
      }
      if (!data.next_cursor) return fresh;
      this.pageCursor = data.next_cursor;
    }
  }
}

async function getInstance(api: CtrlplaneClient, id: string): Promise<Instance> {
  return (await must(api.GET('/v1/instances/{id}', { params: { path: { id } } }), `get ${id}`)).data;
}

/** Follows the instance until it is running (0), failed or destroyed (6), or the time runs out (7). */
async function followUntilRunning(ctx: CliContext, instance: Instance, timeoutMs: number): Promise<Instance> {
  const progress = new ProgressLine(instance.id);
  const events = new EventFollower(ctx.api, instance.id);
  const deadline = Date.now() + timeoutMs;
  let current = instance;
  try {
    progress.observe(current);
    for (;;) {
      for (const event of await events.next()) progress.event(event);
      current = await getInstance(ctx.api, instance.id);
      // The state read after the events may be newer than them: show the events that led to it first.
      if (current.state === 'running' || current.state === 'failed' || current.state === 'destroyed') {
        for (const event of await events.next()) progress.event(event);
      }
      progress.observe(current);
      if (current.state === 'running') return current;
      if (current.state === 'failed' || current.state === 'destroyed') {
        throw new CliError(
          EXIT.failed,
          `${current.id} is ${current.state}${current.error ? `: ${current.error}` : ''}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new CliError(
          EXIT.timeout,
          `${current.id} is still ${current.state} after ${timeoutMs / 1000}s`,
        );
      }
      if (ctx.signal.aborted) throw new CliError(EXIT.error, 'interrupted');
      await pause(POLL_MS, ctx.signal);
    }
  } finally {
    progress.done();
  }
}

export async function instancesCommand(
  ctx: CliContext,
  verb: string | undefined,
  args: string[],
): Promise<void> {
  const { api } = ctx;
  switch (verb) {
    case 'releases':
    case 'release':
    case 'rollback':
      return releasesCommand(ctx, verb, args);
    case 'create': {
      const { values, positionals } = parse(args, {
        file: { type: 'string', short: 'f' },
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
      });
      if (!values.file || positionals.length > 0) {
        throw new CliError(
          EXIT.usage,
          'usage: ctrlplane instances create -f spec.yaml [--wait] [--timeout 120s]',
        );
      }
      const timeoutMs = durationMs(values.timeout ?? '120s', '--timeout');
      const { data } = await must(
        api.POST('/v1/instances', {
          body: readSpec(values.file),
          // A retried create (same key) is applied once.
          headers: { 'idempotency-key': randomUUID() },
        }),
        'create',
      );
      const instance = values.wait ? await followUntilRunning(ctx, data, timeoutMs) : data;
      printInstance(instance, ctx.output);
      return;
    }
    case 'list': {
      const { values, positionals } = parse(args, {
        state: { type: 'string' },
        label: { type: 'string', multiple: true },
      });
      if (positionals.length > 0)
        throw new CliError(EXIT.usage, 'usage: ctrlplane instances list [--state S] [--label k=v]');
      const items: Instance[] = [];
      let cursor: string | undefined;
      do {
        const { data } = await must(
          api.GET('/v1/instances', {
            params: {
              query: {
                limit: 100,
                ...(values.state ? { state: values.state as Instance['state'] } : {}),
                ...(values.label ? { label: values.label } : {}),
                ...(cursor ? { cursor } : {}),
              },
            },
          }),
          'list',
        );
        items.push(...data.items);
        cursor = data.next_cursor;
      } while (cursor);
      printInstances(items, ctx.output);
      return;
    }
    case 'get': {
      const { positionals } = parse(args, {});
      printInstance(await getInstance(api, oneId(positionals, 'get')), ctx.output);
      return;
    }
    case 'wait': {
      const { values, positionals } = parse(args, { state: { type: 'string' }, timeout: { type: 'string' } });
      const id = oneId(positionals, 'wait');
      const state = (values.state ?? 'running') as Instance['state'];
      const deadline = Date.now() + durationMs(values.timeout ?? '60s', '--timeout');
      // The server caps one wait (CTRLPLANE_MAX_WAIT_MS): a longer --timeout asks again until it is used up.
      for (;;) {
        const remainingS = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        try {
          const { data } = await must(
            api.GET('/v1/instances/{id}/wait', {
              params: { path: { id }, query: { state, timeout: `${remainingS}s` } },
            }),
            `wait ${id} ${state}`,
          );
          printInstance(data, ctx.output);
          return;
        } catch (err) {
          if (!(err instanceof CliError) || err.exitCode !== EXIT.timeout || Date.now() >= deadline - 1000)
            throw err;
        }
      }
    }
    case 'start':
    case 'stop':
    case 'restart': {
      const { values, positionals } = parse(args, {
        wait: { type: 'boolean' },
        ...(verb === 'stop' ? { signal: { type: 'string' }, timeout: { type: 'string' } } : {}),
      });
      const id = oneId(positionals, verb);
      const stop = {
        ...(typeof values.signal === 'string' ? { signal: values.signal as 'SIGTERM' } : {}),
        ...(typeof values.timeout === 'string' ? { timeout: positiveInt(values.timeout, '--timeout') } : {}),
      };
      const { data } = await must(
        api.POST(`/v1/instances/{id}/${verb}`, {
          params: { path: { id }, query: values.wait ? { wait: 'true' } : {} },
          ...(Object.keys(stop).length > 0 ? { body: stop } : {}),
          headers: { 'idempotency-key': randomUUID() },
        }),
        `${verb} ${id}`,
      );
      if (data) printInstance(data, ctx.output);
      if (data?.state === 'failed')
        throw new CliError(EXIT.failed, `${id} is failed${data.error ? `: ${data.error}` : ''}`);
      return;
    }
    case 'restart-service': {
      const { values, positionals } = parse(args, { wait: { type: 'boolean' } });
      const [id, service, ...rest] = positionals;
      if (!id || !service || rest.length > 0) {
        throw new CliError(EXIT.usage, 'usage: ctrlplane instances restart-service ID SERVICE [--wait]');
      }
      const { data } = await must(
        api.POST('/v1/instances/{id}/services/{service}/restart', {
          params: { path: { id, service }, query: values.wait ? { wait: 'true' } : {} },
          headers: { 'idempotency-key': randomUUID() },
        }),
        `restart-service ${id} ${service}`,
      );
      if (data) printInstance(data, ctx.output);
      return;
    }
    case 'exec': {
      const { values, positionals } = parse(args, {
        service: { type: 'string' },
        timeout: { type: 'string' },
      });
      const [id, ...command] = positionals;
      if (!id || command.length === 0) {
        throw new CliError(
          EXIT.usage,
          'usage: ctrlplane instances exec ID [--service NAME] [--timeout SECONDS] -- COMMAND ARGS...',
        );
      }
      const stdin = process.stdin.isTTY ? undefined : readFileSync(0, 'utf8');
      const { data } = await must(
        api.POST('/v1/instances/{id}/exec', {
          params: { path: { id } },
          body: {
            command,
            ...(values.service ? { service: values.service } : {}),
            ...(values.timeout ? { timeout: positiveInt(values.timeout, '--timeout') } : {}),
            ...(stdin ? { stdin } : {}),
          },
        }),
        `exec ${id}`,
      );
      if (ctx.output === 'json') {
        printJson(data);
        return;
      }
      process.stdout.write(data.stdout);
      process.stderr.write(data.stderr);
      if (data.stdout_truncated || data.stderr_truncated) {
        process.stderr.write('ctrlplane: the output was cut at 1 MiB per stream\n');
      }
      if (data.timed_out) throw new CliError(EXIT.timeout, `exec ${id}: timed out`);
      // ctrlplane's exit codes have their own meanings: a failed command is 1, its own code in the message.
      if (data.exit_code !== 0) {
        throw new CliError(EXIT.error, `exec ${id}: the command exited with ${data.exit_code}`);
      }
      return;
    }
    case 'delete': {
      const { values, positionals } = parse(args, { wait: { type: 'boolean' } });
      const id = oneId(positionals, 'delete');
      const { data, response } = await must(
        api.DELETE('/v1/instances/{id}', {
          params: { path: { id }, query: values.wait ? { wait: 'true' } : {} },
          headers: { 'idempotency-key': randomUUID() },
        }),
        `delete ${id}`,
      );
      if (response.status === 204) {
        if (ctx.output === 'json') printJson({ id, state: 'destroyed' });
        else process.stdout.write(`${id} destroyed\n`);
      } else if (data) printInstance(data, ctx.output);
      return;
    }
    case 'scale': {
      const { values, positionals } = parse(args, {
        'cpu-millis': { type: 'string' },
        'memory-mb': { type: 'string' },
        replicas: { type: 'string' },
        wait: { type: 'boolean' },
      });
      const id = oneId(positionals, 'scale');
      const body = {
        ...(values['cpu-millis'] !== undefined
          ? { cpu_millis: positiveInt(values['cpu-millis'], '--cpu-millis') }
          : {}),
        ...(values['memory-mb'] !== undefined
          ? { memory_mb: positiveInt(values['memory-mb'], '--memory-mb') }
          : {}),
        ...(values.replicas !== undefined ? { replicas: positiveInt(values.replicas, '--replicas') } : {}),
      };
      if (Object.keys(body).length === 0) {
        throw new CliError(EXIT.usage, 'scale: give --cpu-millis, --memory-mb or --replicas');
      }
      const { data } = await must(
        api.POST('/v1/instances/{id}/scale', {
          params: { path: { id }, query: values.wait ? { wait: 'true' } : {} },
          body,
          headers: { 'idempotency-key': randomUUID() },
        }),
        `scale ${id}`,
      );
      if (data) printInstance(data, ctx.output);
      return;
    }
    case 'logs': {
      const { values, positionals } = parse(args, {
        follow: { type: 'boolean', short: 'f' },
        service: { type: 'string' },
        tail: { type: 'string' },
        since: { type: 'string' },
      });
      const id = oneId(positionals, 'logs');
      const { response } = await must(
        api.GET('/v1/instances/{id}/logs', {
          params: {
            path: { id },
            query: {
              ...(values.follow ? { follow: 'true' } : {}),
              ...(values.service ? { service: values.service } : {}),
              ...(values.tail ? { tail: positiveInt(values.tail, '--tail') } : {}),
              ...(values.since ? { since: values.since } : {}),
            },
          },
          parseAs: 'stream',
          signal: ctx.signal,
        }),
        `logs ${id}`,
      );
      await printLogStream(response, ctx);
      return;
    }
    case 'events': {
      const { values, positionals } = parse(args, { follow: { type: 'boolean', short: 'f' } });
      const id = oneId(positionals, 'events');
      const follower = new EventFollower(api, id);
      const first = await follower.next();
      if (!values.follow) {
        if (ctx.output === 'json') printJson(first);
        else
          printTable(
            ['seq', 'time', 'type', 'payload'],
            first.map((e) => [
              String(e.seq),
              e.occurred_at,
              e.type,
              e.payload ? JSON.stringify(e.payload) : '',
            ]),
          );
        return;
      }
      const print = (e: InstanceEvent) =>
        process.stdout.write(`${ctx.output === 'json' ? JSON.stringify(e) : eventLine(e)}\n`);
      first.forEach(print);
      while (!ctx.signal.aborted) {
        await pause(1000, ctx.signal);
        if (!ctx.signal.aborted) (await follower.next()).forEach(print);
      }
      return;
    }
    default:
      throw new CliError(
        EXIT.usage,
        verb ? `unknown command: instances ${verb}\n${INSTANCES_USAGE}` : INSTANCES_USAGE,
      );
  }
}

/** NDJSON lines as they come: the text of each (stderr lines to stderr), or the objects with -o json. */
async function printLogStream(response: Response, ctx: CliContext): Promise<void> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  const emit = (raw: string) => {
    if (!raw.trim()) return;
    if (ctx.output === 'json') return void process.stdout.write(`${raw}\n`);
    const line = JSON.parse(raw) as LogLine;
    (line.stream === 'stderr' ? process.stderr : process.stdout).write(`${line.line}\n`);
  };
  try {
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk, { stream: true });
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      lines.forEach(emit);
    }
  } catch (err) {
    if (!ctx.signal.aborted) throw new CliError(EXIT.unavailable, `logs: the stream broke (${causeOf(err)})`);
  }
  emit(buffered);
}
