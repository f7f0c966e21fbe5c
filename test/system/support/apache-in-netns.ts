/**
 * Runs inside a network namespace (`ip netns exec NS node --import tsx THIS`):
 * starts a real Apache with the test harness, prints `{"port":N}` on stdout,
 * and stops Apache when stdin closes, so it never outlives the test.
 */
import { startApacheWithScripts } from '../../support/apache-scripts.js';

const apache = await startApacheWithScripts();
process.stdout.write(`${JSON.stringify({ port: apache.port, root: apache.serverDir })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void apache.stop().then(() => process.exit(0));
});
