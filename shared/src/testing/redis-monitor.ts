import net from 'node:net';
import { TEST_INFRA } from './infrastructure.js';

/** One command as MONITOR shows it: its words (name first), and whether a script ran it. */
export interface MonitoredCommand {
  readonly args: string[];
  readonly fromScript: boolean;
}

export interface RedisMonitor {
  /** Calls `listener` with each command the server runs from now on, in the order it ran them. */
  onCommand(listener: (command: MonitoredCommand) => void): void;
  stop(): void;
}

/**
 * MONITOR on a connection of its own, read line by line. ioredis's monitor() takes a reply that comes
 * in the same read as MONITOR's `OK` for the answer to a command nobody sent ("Command queue state
 * error"), which other clients of a shared server (tests running alongside) make likely.
 */
export async function monitorRedis(url = TEST_INFRA.redisUrl): Promise<RedisMonitor> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const listeners: Array<(command: MonitoredCommand) => void> = [];
  let buffered = '';
  let started: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    started = resolve;
    socket.once('error', reject);
  });
  socket.setEncoding('latin1');
  socket.on('data', (text: string) => {
    buffered += text;
    let end = buffered.indexOf('\r\n');
    while (end >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (line === '+OK') started();
      else if (line.startsWith('+')) {
        const command = parseMonitorLine(line);
        for (const listener of listeners) listener(command);
      }
      end = buffered.indexOf('\r\n');
    }
  });
  socket.write('MONITOR\r\n');
  await ready;
  return {
    onCommand: (listener) => void listeners.push(listener),
    stop: () => socket.destroy(),
  };
}

/** `+1796433398.403877 [0 lua] "hget" "key" "field"`: the quoted words unescaped as Redis wrote them. */
function parseMonitorLine(line: string): MonitoredCommand {
  const source = line.slice(line.indexOf('[') + 1, line.indexOf(']'));
  const args: string[] = [];
  const word = /"((?:[^"\\]|\\.)*)"/g;
  for (let match = word.exec(line); match !== null; match = word.exec(line)) {
    args.push(match[1]!.replace(/\\(x[0-9a-f]{2}|.)/g, (_all, escaped: string) => unescaped(escaped)));
  }
  return { args, fromScript: source.includes('lua') };
}

function unescaped(escaped: string): string {
  if (escaped.startsWith('x')) return String.fromCharCode(Number.parseInt(escaped.slice(1), 16));
  return { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' }[escaped] ?? escaped;
}
