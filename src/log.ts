// Loggers of the long-running roles. pino writes a child's bindings after its parent's without
// checking for repeats, and JSON parsers disagree on a repeated key (most keep the last, some reject
// the line): so a key is bound once, by whoever starts the part of the process that owns it.
// Root loggers carry no `component`; each part (webhook, controller, speaker) binds its own.
import pino from 'pino';

/**
 * The one logger type of admitlb: pino's structured calls (object first, message second). Parts that
 * need fewer levels take a Pick of it, so tests pass small recording objects and production passes
 * the pino logger (or a child of it).
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A root logger: no pid/hostname (the pod and node say that) and no component yet. */
export function rootLogger(level: string, destination?: pino.DestinationStream): pino.Logger {
  return destination ? pino({ level, base: null }, destination) : pino({ level, base: null });
}

interface Bindable<L> {
  child?(bindings: Record<string, unknown>): L;
  bindings?(): Record<string, unknown>;
}

/**
 * `logger` with `component` bound, never twice: a logger already bound to this component is
 * returned as is; one bound to another component (a part started inside another's process) gets
 * `subcomponent` instead, so that the line still says which part wrote it.
 */
export function componentLogger<L extends Bindable<L>>(logger: L, component: string): L {
  if (!logger.child) return logger;
  const bound = logger.bindings?.().component;
  if (bound === component) return logger;
  if (bound === undefined) return logger.child({ component });
  return logger.child({ subcomponent: component });
}
