import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.ts';
import { stopChild, waitForPort } from './start-redis.ts';

export interface RedisSentinelSetOptions {
  /** The master's name in the sentinels' configuration. */
  masterName?: string;
  /** How long the master may be silent before a sentinel calls it down. */
  downAfterMs?: number;
  /** Sentinel's bound on one failover (and twice it, the wait before a retry). */
  failoverTimeoutMs?: number;
}

export interface RedisSentinelSet {
  masterName: string;
  /** The sentinels as REDIS_SENTINELS takes them: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  sentinels: string;
  /** Port of the master as the sentinels report it now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master's process (no goodbye to anyone); returns its port. */
  killMaster(): Promise<number>;
  /** Resolves with the new master's port once a quorum of sentinels names one other than `oldPort`. */
  waitForNewMaster(oldPort: number, timeoutMs: number): Promise<number>;
  /** A client on the data server at `port` (the caller closes it). */
  connect(port: number): Redis;
  /** Stops every process it started (by its PID) and removes its temp dir. */
  stop(): Promise<void>;
}

const QUORUM = 2;
const SENTINELS = 3;

/** What every set still running holds: a test process that dies leaves no server behind. */
const live = new Map<ChildProcess, string>(); // child -> its set's temp dir
process.once('exit', () => {
  for (const [child, dir] of live) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Redis Sentinel on loopback for tests: one master, one replica and three sentinels
 * (quorum 2), each a process of Debian's redis-server / redis-sentinel on a free port, with
 * their files in a temp dir. Resolves once the replica is in sync and every sentinel knows
 * the replica and the two other sentinels, so a failover can be voted at once. Timings are
 * short (down after 1 s) so a promotion takes seconds, not minutes.
 */
export async function startRedisSentinelSet(options: RedisSentinelSetOptions = {}): Promise<RedisSentinelSet> {
  const masterName = options.masterName ?? 'mymaster';
  const dir = await mkdtemp(join(tmpdir(), 'ai-lb-sentinel-'));
  const children = new Map<number, ChildProcess>(); // by port
  const clients = new Set<Redis>();
  const connect = (port: number) => {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined); // a killed server: the caller sees the rejected command
    clients.add(client);
    client.once('end', () => clients.delete(client));
    return client;
  };
  const stop = async () => {
    for (const client of clients) client.disconnect();
    await Promise.all([...children.values()].map((child) => stopChild(child)));
    for (const child of children.values()) live.delete(child);
    await rm(dir, { recursive: true, force: true });
  };
  const spawnIn = (command: string, args: string[]) => {
    const child = spawnChild(command, args);
    live.set(child, dir);
    return child;
  };

  try {
    const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all(Array.from({ length: 2 + SENTINELS }, () => freePort()));
    children.set(masterPort, await startServer(spawnIn, dir, 'master', ['--port', String(masterPort)]));
    children.set(
      replicaPort,
      await startServer(spawnIn, dir, 'replica', ['--port', String(replicaPort), '--replicaof', '127.0.0.1', String(masterPort)]),
    );
    await waitFor(async () => /master_link_status:up/.test(await info(replicaPort, 'replication')), 10_000, 'the replica to sync');

    for (const [i, port] of sentinelPorts.entries()) {
      children.set(port, await startSentinel(spawnIn, dir, i, port, { ...options, masterName, masterPort }));
    }
    for (const port of sentinelPorts) await waitUntilReadyToVote(port, masterName);

    const masterPortNow = async () => {
      const votes = await Promise.all(sentinelPorts.map((port) => masterOf(port, masterName).catch(() => null)));
      const counts = new Map<number, number>();
      for (const vote of votes) if (vote !== null) counts.set(vote, (counts.get(vote) ?? 0) + 1);
      const agreed = [...counts].find(([, n]) => n >= QUORUM);
      if (agreed === undefined) throw new Error(`the sentinels do not agree on a master: ${JSON.stringify(votes)}`);
      return agreed[0];
    };
    return {
      masterName,
      sentinels: sentinelPorts.map((port) => `127.0.0.1:${port}`).join(','),
      masterPort: masterPortNow,
      async killMaster() {
        const port = await masterPortNow();
        const child = children.get(port);
        if (child === undefined) throw new Error(`no process of ours listens on the master port ${port}`);
        await stopChild(child, 'SIGKILL');
        return port;
      },
      async waitForNewMaster(oldPort, timeoutMs) {
        let port = oldPort;
        await waitFor(
          async () => {
            port = await masterPortNow().catch(() => oldPort);
            return port !== oldPort && /role:master/.test(await info(port, 'replication').catch(() => ''));
          },
          timeoutMs,
          'a new master',
          100,
        );
        return port;
      },
      connect,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

type Spawn = (command: string, args: string[]) => ChildProcess;

async function startSentinel(
  spawnIn: Spawn,
  dir: string,
  index: number,
  port: number,
  options: RedisSentinelSetOptions & { masterName: string; masterPort: number },
): Promise<ChildProcess> {
  const { masterName } = options;
  const config = [
    `port ${port}`,
    'bind 127.0.0.1',
    'protected-mode no',
    `dir ${dir}`,
    `sentinel monitor ${masterName} 127.0.0.1 ${options.masterPort} ${QUORUM}`,
    `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
    `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 3000}`,
    `sentinel parallel-syncs ${masterName} 1`,
  ].join('\n');
  // Sentinel rewrites its config file (what it learned): one writable file each.
  const file = join(dir, `sentinel-${index}.conf`);
  await writeFile(file, `${config}\n`);
  const child = spawnIn('redis-sentinel', [file]);
  await waitForPort(port, 10_000, () => exitedOf(child, 'redis-sentinel'));
  return child;
}

/** Sentinels find the replica through the master's INFO and each other through hello messages. */
async function waitUntilReadyToVote(port: number, masterName: string): Promise<void> {
  await waitFor(
    async () => {
      const [replicas, others] = await sentinelCommands(port, [
        ['replicas', masterName],
        ['sentinels', masterName],
      ]);
      return (replicas as unknown[]).length === 1 && (others as unknown[]).length === SENTINELS - 1;
    },
    20_000,
    `sentinel ${port} to know the replica and the other sentinels`,
  );
}

async function startServer(spawnIn: Spawn, dir: string, name: string, args: string[]): Promise<ChildProcess> {
  const serverDir = join(dir, name);
  await mkdir(serverDir);
  const port = Number(args[1]);
  const child = spawnIn('redis-server', [
    ...args,
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    // A full sync otherwise waits 5 s for more replicas to join it (diskless sync's default).
    '--repl-diskless-sync-delay',
    '0',
    '--dir',
    serverDir,
  ]);
  await waitForPort(port, 10_000, () => exitedOf(child, 'redis-server'));
  return child;
}

const spawnErrors = new WeakMap<ChildProcess, Error>();

function spawnChild(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'ignore'] });
  child.on('error', (error) => spawnErrors.set(child, error)); // e.g. ENOENT: reported by exitedOf
  return child;
}

function exitedOf(child: ChildProcess, name: string): Error | undefined {
  const error = spawnErrors.get(child);
  if (error) return new Error(`${name} did not start: ${error.message}`);
  return child.exitCode !== null ? new Error(`${name} exited with ${child.exitCode}`) : undefined;
}

/** One short-lived connection per call: the servers come and go during a test. */
async function withClient<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  client.on('error', () => undefined);
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

function info(port: number, section: string): Promise<string> {
  return withClient(port, (client) => client.info(section));
}

function sentinelCommands(port: number, commands: string[][]): Promise<unknown[]> {
  return withClient(port, (client) => Promise.all(commands.map((args) => client.call('SENTINEL', ...args))));
}

async function masterOf(port: number, masterName: string): Promise<number> {
  const [address] = await sentinelCommands(port, [['get-master-addr-by-name', masterName]]);
  return Number((address as [string, string])[1]);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
