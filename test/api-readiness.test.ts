import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningApi, startApi } from '../api/server.ts';
import { createLogger } from '../config/logger.ts';
import { buildProviders } from '../providers/build-providers.ts';
import type { HealthStatus } from '../providers/provider.ts';
import { ProviderRegistry } from '../providers/registry.ts';
import { FakeLogProvider } from './support/api-fake-provider.ts';
import { type Stack, startStack } from './support/stack.ts';

/** A test-only provider that counts its health checks and fails them with a detail /readyz must not show. */
class CountedProvider extends FakeLogProvider {
  checks = 0;
  healthy = true;
  override async healthCheck(): Promise<HealthStatus> {
    this.checks++;
    return {
      healthy: this.healthy,
      message: this.healthy ? 'ok' : 'dial tcp 10.0.0.7:6443: Kubernetes v1.33.13 says no',
      latency_ms: 0,
      checked_at: new Date().toISOString(),
    };
  }
}

// Real PostgreSQL and Temporal behind the API; the provider whose health is counted is registered in this
// process (no real provider can count how often it is asked).
describe('/readyz: a word per dependency, cached for 2 s', () => {
  let stack: Stack;
  let api: RunningApi;
  const counted = new CountedProvider();

  before(async () => {
    stack = await startStack({ worker: false });
    const logger = createLogger('test-readiness', 'silent');
    api = await startApi(
      stack.config,
      logger,
      buildProviders(stack.config, logger).register('counted', counted),
    );
  });

  after(async () => {
    await api?.close();
    await stack?.close();
  });

  const ready = async () => {
    const res = await fetch(`${api.url}/readyz`);
    return { status: res.status, text: await res.text() };
  };

  it('answers only {status, checks: {name: ok|down}}, and asks each dependency at most once per 2 s', async () => {
    await new Promise((r) => setTimeout(r, 2_100)); // past any answer cached while the API started
    const first = counted.checks;
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 10 }, ready));
    while (Date.now() - started < 1_500) answers.push(await ready());
    assert.equal(counted.checks - first, 1, 'one round of checks served every request within 2 s');
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.text), {
        status: 'ready',
        checks: { postgres: 'ok', temporal: 'ok', 'provider:docker': 'ok', 'provider:counted': 'ok' },
      });
    }

    counted.healthy = false;
    await new Promise((r) => setTimeout(r, 2_100 - (Date.now() - started)));
    const oneDown = await ready();
    assert.equal(counted.checks - first, 2, 'asked again once the answer was 2 s old');
    // One provider down of two: the API still serves the other's instances, so it stays in its load balancer.
    assert.equal(oneDown.status, 200);
    assert.deepEqual(JSON.parse(oneDown.text), {
      status: 'ready',
      checks: { postgres: 'ok', temporal: 'ok', 'provider:docker': 'ok', 'provider:counted': 'down' },
    });
    assert.doesNotMatch(oneDown.text, /10\.0\.0\.7|v1\.33|says no/, 'no raw error, address or version');
  });

  it('is not ready when every provider is down', async () => {
    const alone = new CountedProvider();
    alone.healthy = false;
    const logger = createLogger('test-readiness', 'silent');
    const only = await startApi(stack.config, logger, new ProviderRegistry('alone').register('alone', alone));
    try {
      const res = await fetch(`${only.url}/readyz`);
      const text = await res.text();
      assert.equal(res.status, 503);
      assert.deepEqual(JSON.parse(text), {
        status: 'not_ready',
        checks: { postgres: 'ok', temporal: 'ok', 'provider:alone': 'down' },
      });
      assert.doesNotMatch(text, /10\.0\.0\.7|v1\.33|says no/, 'no raw error, address or version');
    } finally {
      await only.close();
    }
  });
});
