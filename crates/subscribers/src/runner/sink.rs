//! [`Sink`]: where a role's outputs go. Records go to the role's output
//! topic through one idempotent producer (ordered, each record written
//! once, across retries and leader changes); CSV rows go to the archive
//! files. [`Sink::flush`] returns once every output so far is
//! acknowledged (or flushed and fsynced): the runner commits input
//! offsets only after it.

use citystream_client::{Client, DeliveryFuture, Producer, ProducerConfig, ProducerRecord};

use crate::archive::files::{ArchiveFiles, Opened};
use crate::config::SubscriberConfig;
use crate::dedupe::Written;
use crate::error::SubscriberError;
use crate::output::Output;
use crate::reading::Source;
use crate::role::Role;

pub(crate) enum Sink {
    Topic {
        producer: Producer,
        topic: &'static str,
        /// Sent since the last flush.
        pending: Vec<DeliveryFuture>,
    },
    Files(ArchiveFiles),
}

impl Sink {
    pub(crate) fn open(
        role: Role,
        client: &Client,
        config: &SubscriberConfig,
    ) -> Result<Sink, SubscriberError> {
        let Some(topic) = role.output() else {
            let files = ArchiveFiles::new(config.archive_dir.clone(), config.archive_fsync);
            return Ok(Sink::Files(files));
        };
        let producer = client.producer(ProducerConfig::default())?;
        Ok(Sink::Topic {
            producer,
            topic,
            pending: Vec::new(),
        })
    }

    /// Called before the dedupe judges `output`: the first row of a
    /// station opens its archive file and notes the offset of its last row
    /// in `written` (an output topic is read back once, at the start).
    pub(crate) async fn prepare(
        &mut self,
        output: &Output,
        written: &mut Written,
    ) -> Result<(), SubscriberError> {
        let (
            Sink::Files(files),
            Output::Row {
                station,
                kind,
                source,
                ..
            },
        ) = (self, output)
        else {
            return Ok(());
        };
        if let Opened::Now {
            last_offset: Some(offset),
        } = files.open(station, *kind).await?
        {
            let last = Source {
                offset,
                ..source.clone()
            };
            written.note(station, &last);
        }
        Ok(())
    }

    pub(crate) async fn write(&mut self, output: Output) -> Result<(), SubscriberError> {
        match (self, output) {
            (
                Sink::Topic {
                    producer,
                    topic,
                    pending,
                },
                Output::Record {
                    key,
                    value,
                    headers,
                    ..
                },
            ) => {
                let record = ProducerRecord {
                    key: Some(key.into()),
                    headers,
                    ..ProducerRecord::new(*topic, value)
                };
                pending.push(producer.send(record).await?);
                Ok(())
            }
            (Sink::Files(files), Output::Row { station, line, .. }) => {
                files.append(&station, &line).await
            }
            _ => unreachable!("a role's outputs are of its sink's sort"),
        }
    }

    /// Waits until every output written so far is acknowledged (records)
    /// or flushed and fsynced (rows).
    pub(crate) async fn flush(&mut self) -> Result<(), SubscriberError> {
        match self {
            Sink::Topic {
                producer, pending, ..
            } => {
                producer.flush().await?;
                for delivery in pending.drain(..) {
                    delivery.await?;
                }
                Ok(())
            }
            Sink::Files(files) => files.sync().await,
        }
    }
}
