import fs from 'node:fs';
import path from 'node:path';
import type { Logger, LogSink } from '../logger.js';
import type { ArbiterSettings } from '../settings.js';

/**
 * gunicorn's answer to log rotation with privilege drop: the log files the workers write
 * (error and access log) belong to the workers' user and group, so a worker that reopens
 * them on USR1 — after logrotate moved the old file away — can create and open the new one.
 * The master keeps its own rights and still writes to them. Called at start and on every
 * USR1 before the workers are told to reopen; a failure is logged, never thrown.
 */
export function handOverLogFiles(settings: ArbiterSettings, log: Logger): void {
  const { user, group } = settings;
  if (user === undefined && group === undefined) return;
  const files = [settings.errorLog, settings.accessLog].filter(
    (f): f is string => typeof f === 'string' && f !== '-' && f !== '',
  );
  for (const file of new Set(files.map((f) => path.resolve(f)))) {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.closeSync(fs.openSync(file, 'a'));
      fs.chownSync(file, user ?? -1, group ?? -1);
    } catch (err) {
      log.warn({ err, file }, `Cannot hand the log file ${file} to the workers' user`);
    }
  }
}

/** USR1 in the master: its own log first, then the workers' files are handed over. */
export function reopenLogs(sink: LogSink, settings: ArbiterSettings, log: Logger): void {
  sink.reopen();
  handOverLogFiles(settings, log);
  log.info('Reopened log files');
}
