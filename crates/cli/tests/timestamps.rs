//! Timestamps with librdkafka against a real `strom serve`: topics with
//! `message.timestamp.type=LogAppendTime` stamp batches with the broker's clock.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{consume_exactly, consumer, producer, StromProcess, TIMEOUT};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, Timestamp};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[tokio::test]
async fn log_append_time_topic_stamps_broker_time() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let b = StromProcess::start();
    let topic = "append-time";
    let admin: AdminClient<DefaultClientContext> =
        common::client_config(b.addr()).create().expect("admin");
    let res = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))
                .set("message.timestamp.type", "LogAppendTime")],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .expect("CreateTopics");
    for r in res {
        r.expect("topic created");
    }
    let p = producer(b.addr());
    let old = now_ms() - 86_400_000;
    let before = now_ms();
    for i in 0..10 {
        p.send(
            FutureRecord::to(topic)
                .key("k")
                .payload(&format!("v{i}"))
                .timestamp(old),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("delivery {i}: {e}"));
    }
    let after = now_ms();
    let c = consumer(b.addr());
    let msgs = consume_exactly(&c, topic, &[0], Offset::Beginning, 10);
    for m in &msgs {
        match m.timestamp() {
            Timestamp::LogAppendTime(t) => assert!(
                t >= before - 5 && t <= after + 5,
                "stamp {t} not in [{before}, {after}]"
            ),
            other => panic!("expected LogAppendTime, got {other:?}"),
        }
    }
    b.assert_no_panic();
}
