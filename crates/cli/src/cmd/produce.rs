//! `strom produce`: one record per stdin line, like kafka-console-producer.

use anyhow::Context;
use bytes::Bytes;
use std::io::BufRead;
use strom_client::{Producer, ProducerConfig};

use super::{AcksArg, ConnectArgs};

/// Flags of `strom produce` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Split each line at the first SEP: the part before is the key, the rest the value.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Acknowledgement level.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
}

pub(crate) fn run(args: ProduceArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        let producer = Producer::new(
            client,
            ProducerConfig {
                acks: args.acks.into(),
                ..ProducerConfig::default()
            },
        );
        let mut lines = stdin_lines();
        while let Some(line) = lines.recv().await {
            let line = line.context("reading stdin")?;
            let (key, value) = split_line(&line, args.key_separator.as_deref());
            // The future is not awaited: flush() below reports any failure.
            producer
                .send(&args.topic, key, Some(value), Vec::new())
                .await
                .with_context(|| format!("producing to {}", args.topic))?;
        }
        producer
            .flush()
            .await
            .with_context(|| format!("producing to {}", args.topic))?;
        Ok(())
    })
}

/// Reads stdin on a blocking thread (stdin has no async API without tokio's io-std feature) and
/// hands lines over a bounded channel, so a fast stdin cannot outrun the producer unboundedly.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// Splits a line into key and value at the first separator; without one (or without a separator
/// in the line) the whole line is the value and the key is null, as kafka-console-producer does
/// when parse.key is off.
fn split_line(line: &str, separator: Option<&str>) -> (Option<Bytes>, Bytes) {
    if let Some(sep) = separator.filter(|s| !s.is_empty()) {
        if let Some((k, v)) = line.split_once(sep) {
            return (
                Some(Bytes::copy_from_slice(k.as_bytes())),
                Bytes::copy_from_slice(v.as_bytes()),
            );
        }
    }
    (None, Bytes::copy_from_slice(line.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_is_before_the_first_separator() {
        let (k, v) = split_line("user1:hello:world", Some(":"));
        assert_eq!(k.as_deref(), Some(&b"user1"[..]));
        assert_eq!(&v[..], b"hello:world");
        let (k, v) = split_line("no-sep", Some(":"));
        assert!(k.is_none());
        assert_eq!(&v[..], b"no-sep");
        let (k, v) = split_line("a::b", Some("::"));
        assert_eq!((k.as_deref(), &v[..]), (Some(&b"a"[..]), &b"b"[..]));
        let (k, _) = split_line("a:b", None);
        assert!(k.is_none());
    }
}
