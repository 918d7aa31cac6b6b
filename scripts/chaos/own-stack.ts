/**
 * The chaos run's own PostgreSQL cluster, Docker engine and Temporal dev server, so that restarting and killing
 * them touches nothing another run on this machine uses: a `pg_createcluster` cluster on its own port, a second
 * dockerd (its own network namespace, socket, data root, exec root, containerd namespaces, pid file, bridge and
 * address pool, no iptables rules) and a dev server on its own port and SQLite file. Names carry the run's pid, so what a killed
 * run left behind is recognised and removed by the next one (removeAbandonedStacks).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';
import { freePort } from '../free-port.ts';
import { REPO_ROOT, searchAttributeFlags, temporalCliPath } from '../temporal-cli.ts';

const run = promisify(execFile);
const RUN_ROOT = '/run/cp-chaos-';
const DATA_ROOT = '/var/lib/cp-chaos-';
const CLUSTER_PREFIX = 'chaos';
const BRIDGE_PREFIX = 'cpch';
/** Set in the environment of a run's API and workers to the run's pid. */
export const CHAOS_OWNER_VARIABLE = 'CHAOS_RUN_OWNER';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}

export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// --- PostgreSQL ---------------------------------------------------------------------------------------------------

export class OwnPostgres {
  private constructor(
    readonly version: string,
    readonly cluster: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/ctrlplane`;
  }

  static async create(id: string): Promise<OwnPostgres> {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
    const version = versions[versions.length - 1];
    if (!version) throw new Error('no PostgreSQL under /usr/lib/postgresql (run scripts/setup.sh)');
    const port = await freePort();
    const pg = new OwnPostgres(version, `${CLUSTER_PREFIX}${id}`, port);
    await run('pg_createcluster', [
      version,
      pg.cluster,
      '-p',
      String(port),
      '--',
      '--auth-local=trust',
      '--auth-host=trust',
    ]);
    await pg.ctl('start');
    await until('the chaos PostgreSQL', 30_000, () => portAnswers(port));
    return pg;
  }

  private async ctl(action: string): Promise<void> {
    await run('pg_ctlcluster', [
      '--skip-systemctl-redirect',
      '--mode',
      'fast',
      this.version,
      this.cluster,
      action,
    ]);
  }

  /** `pg_ctlcluster … restart`: every connection is cut, then the server comes back. */
  async restart(): Promise<void> {
    await this.ctl('restart');
    await until('PostgreSQL after its restart', 30_000, () => portAnswers(this.port));
  }

  async drop(): Promise<void> {
    await run('pg_dropcluster', ['--stop', this.version, this.cluster]);
  }
}

// --- Docker engine ------------------------------------------------------------------------------------------------

export class OwnDockerd {
  private child: ChildProcess | undefined;

  private constructor(
    readonly id: string,
    /** Which /16 of 10.x the engine's bridge and default pool use (ctrlplane's instance pool is given apart). */
    readonly octet: number,
    private readonly logPath: string,
  ) {}

  get runDir(): string {
    return `${RUN_ROOT}${this.id}`;
  }

  get dataDir(): string {
    return `${DATA_ROOT}${this.id}`;
  }

  get bridge(): string {
    return `${BRIDGE_PREFIX}${this.id}`.slice(0, 15);
  }

  /**
   * The network namespace the engine runs in. A second dockerd in the host's namespace removed the machine
   * engine's docker0 when it restarted on its data root (seen with Docker 20.10), and both engines published
   * host ports from the same range. Its socket is a file, so the API and the workers reach it all the same.
   */
  get netns(): string {
    return `${BRIDGE_PREFIX}${this.id}`;
  }

  get socket(): string {
    return `${this.runDir}/docker.sock`;
  }

  get dockerHost(): string {
    return `unix://${this.socket}`;
  }

  static async create(id: string, octet: number, logPath: string): Promise<OwnDockerd> {
    const engine = new OwnDockerd(id, octet, logPath);
    mkdirSync(engine.runDir, { recursive: true });
    mkdirSync(engine.dataDir, { recursive: true });
    await run('ip', ['netns', 'add', engine.netns]);
    const inNetns = (...args: string[]) => run('ip', ['netns', 'exec', engine.netns, 'ip', ...args]);
    await inNetns('link', 'set', 'lo', 'up');
    await inNetns('link', 'add', engine.bridge, 'type', 'bridge');
    await inNetns('addr', 'add', `10.${octet}.255.1/24`, 'dev', engine.bridge);
    await inNetns('link', 'set', engine.bridge, 'up');
    try {
      await engine.start();
      // The test image, made with `docker import` as setup.sh makes it for the shared engine.
      await run('bash', [`${REPO_ROOT}scripts/build-test-images.sh`], {
        env: { ...process.env, DOCKER_HOST: engine.dockerHost },
      });
    } catch (err) {
      await engine.destroy().catch(() => {});
      throw err;
    }
    return engine;
  }

  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a');
    // nsenter, not `ip netns exec`: that one mounts a sysfs of its own, without the cgroup mounts dockerd needs.
    this.child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.netns}`,
        'dockerd',
        '-H',
        this.dockerHost,
        '--data-root',
        `${this.dataDir}/docker`,
        '--exec-root',
        `${this.runDir}/exec`,
        '--pidfile',
        `${this.runDir}/docker.pid`,
        '--bridge',
        this.bridge,
        '--default-address-pool',
        `base=10.${this.octet}.0.0/17,size=24`,
        // The machine's containerd (when one runs) serves both engines: each keeps its containers in its own
        // containerd namespaces.
        `--containerd-namespace=cp-chaos-${this.id}`,
        `--containerd-plugins-namespace=cp-chaos-${this.id}-plugins`,
        // Its rules would share the host's DOCKER chains with the machine's own engine; published ports
        // still work through docker-proxy.
        '--iptables=false',
        '--ip-masq=false',
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    await until('the chaos dockerd', 60_000, async () => {
      const { stdout } = await run('docker', ['-H', this.dockerHost, 'info', '--format', '{{.ID}}'], {
        timeout: 5_000,
      });
      return stdout.trim() !== '';
    });
  }

  /** SIGTERM and a fresh start: containers stop with the daemon and come back by their restart policy. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    await waitForExit(child, 60_000);
    this.child = undefined;
  }

  /** Stops the daemon and removes every container, network and volume with it (its whole data root). */
  async destroy(): Promise<void> {
    await this.stop();
    await removeEngineDirs(this.runDir, this.dataDir);
    await run('ip', ['netns', 'del', this.netns]).catch(() => {});
  }
}

/** Processes (container shims, port proxies) whose command line names the engine's directories. */
function killProcessesUnder(runDir: string, dataDir: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(`${runDir}/`) || cmdline.includes(`${dataDir}/`)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

async function removeEngineDirs(runDir: string, dataDir: string): Promise<void> {
  killProcessesUnder(runDir, dataDir);
  // Mounts of containers the daemon could not clean up (a killed daemon) must go before the files.
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((path) => path.startsWith(`${runDir}/`) || path.startsWith(`${dataDir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) await run('umount', ['-l', mount]).catch(() => {});
  rmSync(runDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}

// --- Temporal dev server ------------------------------------------------------------------------------------------

export class OwnTemporal {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dbFile: string,
    private readonly logPath: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async create(dbFile: string, logPath: string): Promise<OwnTemporal> {
    const temporal = new OwnTemporal(await freePort(), dbFile, logPath);
    await temporal.start();
    return temporal;
  }

  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a');
    this.child = spawn(
      temporalCliPath(),
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--headless',
        '--db-filename',
        this.dbFile,
        '--namespace',
        'default',
        '--log-level',
        'error',
        '--sqlite-pragma',
        'journal_mode=WAL',
        ...searchAttributeFlags(CTRLPLANE_SEARCH_ATTRIBUTES),
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    await until('the chaos Temporal dev server', 60_000, () => portAnswers(this.port));
  }

  /** SIGKILL, then the server again on the same database file. */
  async killAndRestart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await waitForExit(child, 10_000);
    this.child = undefined;
  }
}

// --- leftovers ----------------------------------------------------------------------------------------------------

/**
 * What chaos runs that died without their teardown left: engines, clusters and bridges of dead pids, and their
 * dev servers. `own`: also this run's (an interrupted run cleans up after itself this way).
 */
export async function removeAbandonedStacks(own?: number): Promise<string[]> {
  const removed: string[] = [];
  const alive = (pid: number) => pid !== own && processAlive(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (() => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })();
    const environ = (() => {
      try {
        return readFileSync(`/proc/${entry}/environ`, 'utf8');
      } catch {
        return '';
      }
    })();
    const owner =
      /\.data\/chaos\/(\d+)-\d+\/temporal\.sqlite/.exec(cmdline)?.[1] ??
      new RegExp(`(?:^|\0)${CHAOS_OWNER_VARIABLE}=(\\d+)(?:\0|$)`).exec(environ)?.[1];
    if (owner && !alive(Number(owner))) {
      try {
        process.kill(Number(entry), 'SIGKILL');
        removed.push(`process ${entry} of run ${owner}`);
      } catch {
        // gone meanwhile
      }
    }
  }
  for (const entry of readdirSync('/run')) {
    const pid = Number(entry.slice(RUN_ROOT.length - '/run/'.length));
    if (!entry.startsWith('cp-chaos-') || !Number.isInteger(pid) || alive(pid)) continue;
    const runDir = `/run/${entry}`;
    const pidFile = `${runDir}/docker.pid`;
    const daemonPid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim() || 0) : 0;
    if (daemonPid && processAlive(daemonPid)) {
      process.kill(daemonPid, 'SIGTERM');
      await until('an abandoned chaos dockerd to stop', 60_000, async () => !processAlive(daemonPid)).catch(
        () => process.kill(daemonPid, 'SIGKILL'),
      );
    }
    await removeEngineDirs(runDir, `${DATA_ROOT}${pid}`);
    removed.push(runDir);
  }
  for (const entry of existsSync('/var/lib') ? readdirSync('/var/lib') : []) {
    const pid = Number(entry.slice('cp-chaos-'.length));
    if (entry.startsWith('cp-chaos-') && Number.isInteger(pid) && !alive(pid)) {
      await removeEngineDirs(`${RUN_ROOT}${pid}`, `/var/lib/${entry}`);
      removed.push(`/var/lib/${entry}`);
    }
  }
  const { stdout: clusters } = await run('pg_lsclusters', ['--no-header']).catch(() => ({ stdout: '' }));
  for (const line of clusters.split('\n')) {
    const [version, name] = line.trim().split(/\s+/);
    const pid = Number(name?.slice(CLUSTER_PREFIX.length));
    if (!version || !name?.startsWith(CLUSTER_PREFIX) || !Number.isInteger(pid) || pid === 0 || alive(pid))
      continue;
    await run('pg_dropcluster', ['--stop', version, name]).catch(() => {});
    removed.push(`postgresql ${version}/${name}`);
  }
  const { stdout: links } = await run('ip', ['-o', 'link', 'show', 'type', 'bridge']);
  for (const match of links.matchAll(/^\d+: (cpch(\d+))[:@]/gm)) {
    if (alive(Number(match[2]))) continue;
    await run('ip', ['link', 'del', match[1] as string]).catch(() => {});
    removed.push(`bridge ${match[1]}`);
  }
  const { stdout: namespaces } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  for (const match of namespaces.matchAll(/^(cpch(\d+))\b/gm)) {
    if (alive(Number(match[2]))) continue;
    await run('ip', ['netns', 'del', match[1] as string]).catch(() => {});
    removed.push(`network namespace ${match[1]}`);
  }
  return removed;
}
