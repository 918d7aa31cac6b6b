import { pino } from 'pino';
import { traceLogFields } from '../telemetry/log-fields.ts';

export type Logger = pino.Logger;

/** JSON lines on stdout (or `destination`), each with the active trace's ids when there is one. */
export function createLogger(name: string, level: string, destination?: pino.DestinationStream): Logger {
  return pino({ name, level, base: { service: name }, mixin: traceLogFields }, destination);
}
