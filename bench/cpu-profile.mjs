/**
 * Preloaded with `--import` (through NODE_OPTIONS, where --cpu-prof is not allowed) into a
 * child process, e.g. the launcher, when BENCH_CPU_PROF is set: profiles the whole process
 * and writes <BENCH_CPU_PROF>/<name>-<pid>.cpuprofile when it exits. The main-thread
 * inspector session answers synchronously, so this works in an 'exit' handler.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_CPU_PROF;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      const name = path.basename(process.argv[1] ?? 'node').replace(/\.[^.]+$/, '');
      writeFileSync(path.join(path.resolve(dir), `${name}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
