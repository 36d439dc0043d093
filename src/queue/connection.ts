/**
 * The Redis server behind a job queue: `redis://[user:password@]HOST[:PORT][/DB]`, checked and
 * reached once (PING, version) before anything is enqueued or written, so a wrong URL or an
 * unreachable server costs a one-line error and leaves no trace on disk.
 */
import { Redis } from 'ioredis';
import { LmdynError } from '../errors.js';

/** The BullMQ queue every lmdyn job goes through (its keys are `lmdyn:lmdyn:…` in Redis). */
export const QUEUE_NAME = 'lmdyn';
export const QUEUE_PREFIX = 'lmdyn';

export interface QueueConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** The URL without its password, for messages. */
  display: string;
}

/** BullMQ (and Redis) need 6.2 or newer. */
const MIN_REDIS = [6, 2];

export function parseQueueUrl(url: string): QueueConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LmdynError('bad_argument', `--queue must be redis://HOST[:PORT][/DB], got '${url}'`);
  }
  if (u.protocol !== 'redis:') {
    throw new LmdynError(
      'bad_argument',
      `--queue must be redis://HOST[:PORT][/DB], got '${url}' (scheme ${u.protocol.replace(/:$/, '')} is not supported)`,
    );
  }
  if (u.hostname === '')
    throw new LmdynError('bad_argument', `--queue ${url} names no host (redis://HOST[:PORT][/DB])`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\/+/, '');
  if (!/^\d*$/.test(path) || Number(path) > 1_000_000 || u.search !== '' || u.hash !== '') {
    throw new LmdynError(
      'bad_argument',
      `--queue ${url}: after the port only /DB (a database number) may follow`,
    );
  }
  const db = path === '' ? 0 : Number(path);
  const hostname = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const display = `redis://${u.username ? `${u.username}@` : ''}${u.host}/${db}`;
  return {
    host: hostname,
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    display,
  };
}

/**
 * Parses the URL and reaches the server (PING; refuses Redis older than 6.2). The connection is
 * closed again: BullMQ opens its own.
 */
export async function connectQueue(url: string, timeoutMs = 5000): Promise<QueueConnection> {
  const conn = parseQueueUrl(url);
  let lastError = '';
  const client = new Redis({
    ...redisOptions(conn),
    db: 0, // selected below, where a refusal is an error (ioredis would fall back to 0)
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    // after a refused connection ioredis waits this long for a close that never comes
    disconnectTimeout: 50,
  });
  client.on('error', (err: Error) => {
    lastError = err.message;
  });
  const fail = (why: string): LmdynError =>
    new LmdynError('network', `cannot use the Redis server at ${conn.display}: ${why}`);
  try {
    await withTimeout(client.connect(), timeoutMs, 'no answer');
    if (conn.db !== 0) {
      try {
        await withTimeout(client.select(conn.db), timeoutMs, 'no answer to SELECT');
      } catch (err) {
        throw fail(`database ${conn.db}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const info = await withTimeout(client.info('server'), timeoutMs, 'no answer to INFO');
    const m = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (!m) throw fail('it does not report a redis_version');
    const [major, minor] = [Number(m[1]), Number(m[2])];
    if (major < MIN_REDIS[0] || (major === MIN_REDIS[0] && minor < MIN_REDIS[1])) {
      throw fail(`it runs Redis ${m[1]}.${m[2]}; BullMQ needs ${MIN_REDIS.join('.')} or newer`);
    }
  } catch (err) {
    if (err instanceof LmdynError) throw err;
    const why = lastError || (err instanceof Error ? err.message : String(err));
    throw fail(why);
  } finally {
    client.disconnect();
  }
  return conn;
}

/** The ioredis options BullMQ's own connections use (workers need maxRetriesPerRequest null). */
export function redisOptions(conn: QueueConnection): {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  maxRetriesPerRequest: null;
} {
  return {
    host: conn.host,
    port: conn.port,
    db: conn.db,
    ...(conn.username ? { username: conn.username } : {}),
    ...(conn.password ? { password: conn.password } : {}),
    maxRetriesPerRequest: null,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // Internal invariant, not user input: caught by the caller and reported as a network LmdynError naming the server.
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
