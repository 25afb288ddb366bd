import type { Superduper } from '../../src/client.js';
import { SidecarMetrics } from '../../src/sidecar/metrics.js';

/**
 * A sidecar's metrics as `superduper start --metrics` has them, scraped every
 * 5 s (Prometheus scrapes every 15 s by default: this is the heavier case).
 */
export function benchMetrics(db: Superduper): SidecarMetrics {
  const metrics = new SidecarMetrics({ status: () => db.status({ countDone: false }), sidecar: () => ({ state: 'working', outages: 0 }) });
  setInterval(() => void metrics.registry.metrics().catch(() => undefined), 5000).unref();
  return metrics;
}
