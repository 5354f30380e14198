import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Runs an ES module's source in a node process started with --allow-natives-syntax (under
 * tsx, so it may import .ts files), for V8's own checks such as `%HaveSameMap`; resolves with
 * what it wrote to stdout.
 */
export async function runWithNativesSyntax(source: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--allow-natives-syntax',
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    source,
  ]);
  return stdout;
}
