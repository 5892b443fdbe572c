// Produces one record with KafkaJS and consumes it back, with the connection settings in the
// environment (STROM_BROKER, STROM_TOPIC; STROM_CA for TLS; STROM_SASL_MECHANISM,
// STROM_SASL_USER, STROM_SASL_PASSWORD for SASL). Exits 0 when the record came back, else 1
// with the error on stderr. Driven by tests/compat/test_security.py.
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");

const env = process.env;
const value = `kafkajs-${Date.now()}-${Math.random()}`;

const kafka = new Kafka({
  clientId: "strom-compat-kafkajs",
  brokers: [env.STROM_BROKER],
  ssl: env.STROM_CA ? { ca: [fs.readFileSync(env.STROM_CA, "utf-8")] } : false,
  sasl: env.STROM_SASL_MECHANISM
    ? {
        mechanism: env.STROM_SASL_MECHANISM,
        username: env.STROM_SASL_USER,
        password: env.STROM_SASL_PASSWORD,
      }
    : undefined,
  logLevel: logLevel.ERROR,
  retry: { retries: 3 },
});

async function main() {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  await producer.send({ topic: env.STROM_TOPIC, acks: -1, messages: [{ key: "k", value }] });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `g-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: env.STROM_TOPIC, fromBeginning: true });
  const got = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("record not consumed back in 30s")), 30000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          if (message.value.toString() === value) {
            clearTimeout(timer);
            resolve(true);
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return got;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
