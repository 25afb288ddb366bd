import { randomUUID } from 'node:crypto';
import type { Registry, WakeUp } from '../backend.js';
import type { ApplyResult } from '../types.js';
import { Capture } from './capture.js';
import { ComponentApplier } from './components.js';
import type { MongoContext } from './context.js';

/**
 * What wakes a sidecar on MongoDB: the change capture this process runs (when
 * it holds the capture's lease) raises a wake-up for each listener with new
 * queue entries and each model call; sidecars of other processes look every
 * reconcile interval (capability crossSessionNotify is false). Subscribing
 * starts the capture and the applier of components declared from mongosh.
 */
export function mongoWakeUp(context: MongoContext, registry: Registry & { applyOne(raw: unknown): Promise<ApplyResult[]> }): WakeUp {
  return {
    async subscribe(handlers) {
      const owner = `capture-${randomUUID()}`;
      const capture = new Capture(context, owner);
      const applier = new ComponentApplier(context, registry, owner);
      const changed = (id: number) => handlers.changed(id);
      const listeners = () => handlers.changed(undefined);
      const request = (id: string) => handlers.request(id);
      const components = () => applier.wake();
      context.signals.on('changed', changed);
      context.signals.on('listeners', listeners);
      context.signals.on('request', request);
      context.signals.on('components', components);
      capture.start();
      applier.start();
      return async () => {
        context.signals.off('changed', changed);
        context.signals.off('listeners', listeners);
        context.signals.off('request', request);
        context.signals.off('components', components);
        await Promise.all([capture.stop(), applier.stop()]);
      };
    },

    async asleep(_sidecarId, _quickMs, fn) {
      return fn(false);
    },
  };
}
