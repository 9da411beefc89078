/* Where the Kafka tests' broker comes from (testing/kafka.ts), decided without starting one. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaSkipReason, selectKafkaProvider, startKafkaTestBroker } from './kafka';

const dir = mkdtempSync(join(tmpdir(), 'pt-kafka-provider-'));
/** the environment without any of the variables the choice reads */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { KAFKA_BROKERS: _b, KAFKA_TEST_PROVIDER: _p, DOCKER_HOST: _d, CI: _c, ...rest } = process.env;
  return { ...rest, DOCKER_HOST: `unix://${join(dir, 'no-such.sock')}`, ...extra };
}

describe('Kafka test provider', () => {
  it('uses KAFKA_BROKERS as given, and never stops it', async () => {
    const env = cleanEnv({ KAFKA_BROKERS: 'k1:9092, k2:9092' });
    assert.equal(selectKafkaProvider(env), 'env');
    assert.equal(kafkaSkipReason(env), undefined);
    const b = await startKafkaTestBroker(env);
    assert.deepEqual(b.brokers, ['k1:9092', 'k2:9092']);
    assert.equal(b.outage, undefined);
  });

  it('picks what KAFKA_TEST_PROVIDER says, and refuses anything else by name', () => {
    assert.equal(selectKafkaProvider(cleanEnv({ KAFKA_TEST_PROVIDER: 'testcontainers' })), 'testcontainers');
    assert.equal(kafkaSkipReason(cleanEnv({ KAFKA_TEST_PROVIDER: 'testcontainers' })), undefined);
    assert.equal(selectKafkaProvider(cleanEnv({ KAFKA_TEST_PROVIDER: 'local' })), 'local');
    assert.throws(() => selectKafkaProvider(cleanEnv({ KAFKA_TEST_PROVIDER: 'docker' })), /KAFKA_TEST_PROVIDER: "docker"/);
  });

  it('runs a local broker when no Docker engine answers (what CI does)', () => {
    assert.equal(selectKafkaProvider(cleanEnv()), 'local');
    // (under CI a missing Java fails the run rather than skipping it)
    assert.equal(kafkaSkipReason(cleanEnv({ CI: 'true' })), undefined);
  });

  it('forced testcontainers with no engine fails at once, naming where it looked', async () => {
    const started = Date.now();
    await assert.rejects(startKafkaTestBroker(cleanEnv({ KAFKA_TEST_PROVIDER: 'testcontainers' })), (e: Error) => {
      assert.match(e.message, /no Docker engine answered at unix:\/\/.*no-such\.sock/);
      assert.match(e.message, /KAFKA_TEST_PROVIDER/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });
});
