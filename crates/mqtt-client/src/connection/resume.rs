//! Replacing a lost connection (MQTT 3.1.1 and 5.0 §4.4, message delivery
//! retry). With [`crate::ConnectOptions::reconnect`] set, a connection
//! lost for a transient reason is followed by attempts at the broker
//! addresses in turn, with backoff (`reconnect.rs`), until one accepts.
//! Meanwhile commands are still taken: QoS 1/2 publishes and subscribes
//! get their packet id and wait (bounded by the publish window and the
//! packet ids), QoS 0 publishes fail at once (at most once is never
//! re-sent), DISCONNECT or dropping the client ends the task.
//!
//! On the new connection, in the order they were made:
//! - CONNACK session present = 1 (the broker has our session): every
//!   publish without its final ack is sent again with its packet id,
//!   with DUP = 1 if a connection may have had it; a QoS 2 publish whose
//!   PUBREC came gets its PUBREL again instead [MQTT-4.4.0-1].
//! - session present = 0 (the broker lost it, or it was not persistent):
//!   the publishes are sent again as new ones (DUP = 0; the ids are free
//!   in a new session), so QoS 1 stays at least once but a QoS 2 message
//!   the old session had may be stored twice; a QoS 2 publish whose
//!   PUBREC came is complete (the broker took the message; the session
//!   that would take PUBREL is gone) and resolves with success. Ids of
//!   QoS 2 messages to us awaiting PUBREL are forgotten.
//! - subscribes without SUBACK are sent again (subscribing is idempotent).
//!   Subscriptions the broker had granted are not renewed when it lost
//!   the session: that is the caller's, who sees session present 0 only
//!   through [`crate::MqttClient::reconnects`] today.
//!
//! What the lost connection had not finished: QoS 0 publishes not yet
//! written fail ([`MqttClientError::NotSent`]); a message to us that
//! waited for room in the channel is dropped unacknowledged (the broker
//! sends it again in a resumed session).

use std::future::Future;
use std::num::NonZeroU16;

use citystream_mqtt_codec::{Ack, Packet, Publish, QoS, ReasonCode};
use tokio::time::Instant;

use super::{Command, Connection, Request, TIMER_IDLE, subscribe_packet};
use crate::error::{CloseReason, MqttClientError};
use crate::handshake::{self, Opened, READ_ROOM_MIN_BYTES};
use crate::options::ConnectOptions;
use crate::reconnect::{
    Addresses, ReconnectOptions, jitter_random, worth_another_attempt, worth_reconnecting,
};

/// How the task connects again: where, with what CONNECT, how patiently.
pub(crate) struct Dialer {
    pub addresses: Addresses,
    /// The reconnect's options ([`ConnectOptions::for_reconnect`]).
    pub options: ConnectOptions,
    pub policy: ReconnectOptions,
}

impl Connection {
    /// After the connection was lost for `lost`: connects again and
    /// re-sends what waits, or says why the task ends instead.
    pub(super) async fn resume_after(&mut self, lost: CloseReason) -> Result<(), CloseReason> {
        if self.dialer.is_none() || self.disconnecting.is_some() || !worth_reconnecting(&lost) {
            return Err(lost);
        }
        tracing::warn!(reason = %lost, "MQTT connection lost; reconnecting");
        self.abandon_connection(&lost);
        let opened = self.redial(&lost).await?;
        let session_present = opened.connack.session_present;
        tracing::info!(session_present, "MQTT connection resumed");
        self.attach(opened);
        self.resend(session_present);
        Ok(())
    }

    /// Settles what belonged to the lost socket only.
    fn abandon_connection(&mut self, lost: &CloseReason) {
        for (_, reply) in self.written_waiters.drain(..) {
            let _ = reply.send(Err(MqttClientError::NotSent {
                reason: lost.clone(),
            }));
        }
        self.undelivered = None;
        self.outgoing.clear();
        self.incoming.clear();
    }

    /// Attempts with backoff until one is accepted. Exits: accepted; a
    /// refusal for good; `attempts_max` failures; DISCONNECT or every
    /// client handle dropped (each `Err`).
    async fn redial(&mut self, lost: &CloseReason) -> Result<Opened, CloseReason> {
        let mut failed_attempts: u32 = 0;
        loop {
            let dialer = self.dialer.as_mut().expect("checked by resume_after");
            let delay = dialer.policy.delay(failed_attempts, jitter_random());
            let attempts_max = dialer.policy.attempts_max;
            let address = dialer.addresses.next().to_owned();
            let options = dialer.options.clone();
            self.offline_until(tokio::time::sleep(delay), lost).await?;
            let attempt = handshake::open(&address, &options);
            let error = match self.offline_until(attempt, lost).await? {
                Ok(opened) => return Ok(opened),
                Err(error) => error,
            };
            if !worth_another_attempt(&error) {
                let MqttClientError::Refused { reason } = error else {
                    unreachable!("only refusals are final");
                };
                return Err(CloseReason::ReconnectRefused { address, reason });
            }
            failed_attempts = failed_attempts.saturating_add(1);
            tracing::debug!(%address, %error, failed_attempts, "MQTT reconnect attempt failed");
            if attempts_max.is_some_and(|max| failed_attempts >= max) {
                return Err(CloseReason::ReconnectGaveUp {
                    attempts: failed_attempts,
                    last_error: error.to_string(),
                });
            }
        }
    }

    /// Runs `future` while taking commands; `Err` if they end the task.
    async fn offline_until<F: Future>(
        &mut self,
        future: F,
        lost: &CloseReason,
    ) -> Result<F::Output, CloseReason> {
        let mut future = std::pin::pin!(future);
        loop {
            tokio::select! {
                output = &mut future => return Ok(output),
                command = self.commands.recv() => match command {
                    Some(command) => self.offline_command(command, lost)?,
                    None => return Err(CloseReason::ByClient),
                },
            }
        }
    }

    /// A command while there is no connection: kept for the next one, or
    /// failed (QoS 0), or the end (DISCONNECT).
    fn offline_command(&mut self, command: Command, lost: &CloseReason) -> Result<(), CloseReason> {
        match command {
            Command::Publish { publish, reply, .. } if publish.qos == QoS::AtMostOnce => {
                let _ = reply.send(Err(MqttClientError::NotSent {
                    reason: lost.clone(),
                }));
            }
            Command::PublishAll { reply, .. } => {
                let _ = reply.send(Err(MqttClientError::NotSent {
                    reason: lost.clone(),
                }));
            }
            Command::Publish {
                publish,
                permit,
                reply,
            } => {
                let _ = self.track_publish(publish, permit, reply);
            }
            Command::Subscribe { filters, reply } => {
                let _ = self.track_subscribe(filters, reply);
            }
            Command::Disconnect { reply } => {
                self.disconnecting = Some(reply);
                return Err(CloseReason::ByClient);
            }
        }
        Ok(())
    }

    /// Takes over the new socket, its codec and what was agreed.
    fn attach(&mut self, opened: Opened) {
        let (reader, writer) = opened.stream.into_split();
        let now = Instant::now();
        if opened.agreed.publish_window < self.publish_window {
            // The window was sized by the first CONNACK; a broker that
            // lowers its Receive Maximum later may see more in flight.
            tracing::warn!(
                window = opened.agreed.publish_window,
                "the broker's Receive Maximum is lower than at the first connect"
            );
        }
        self.reader = reader;
        self.writer = writer;
        self.codec = opened.codec;
        self.incoming = opened.leftover;
        self.read_room_bytes = READ_ROOM_MIN_BYTES;
        self.outgoing.clear();
        self.queued_bytes_total = 0;
        self.written_bytes_total = 0;
        self.keep_alive = opened.agreed.keep_alive;
        self.last_write_at = now;
        self.ping_sent_at = None;
        let next_check = now + self.keep_alive.unwrap_or(TIMER_IDLE);
        self.keep_alive_timer.as_mut().reset(next_check);
    }

    /// Sends again what waits, in the order it was asked for.
    fn resend(&mut self, session_present: bool) {
        if !session_present {
            self.awaiting_release.clear();
        }
        let mut waiting: Vec<(u64, NonZeroU16)> = self
            .requests
            .iter()
            .map(|(packet_id, request)| (request.sequence(), packet_id))
            .collect();
        waiting.sort_unstable();
        for (_, packet_id) in waiting {
            self.resend_one(packet_id, session_present);
        }
    }

    fn resend_one(&mut self, packet_id: NonZeroU16, session_present: bool) {
        let packet = match self.requests.get_mut(packet_id) {
            Some(Request::Publish { released: true, .. }) if session_present => {
                Packet::PubRel(Ack::success(packet_id))
            }
            Some(Request::Publish { released: true, .. }) => {
                let Some(Request::Publish { reply, .. }) = self.requests.release(packet_id) else {
                    unreachable!("matched above");
                };
                let _ = reply.send(Ok(ReasonCode::SUCCESS));
                return;
            }
            Some(Request::Publish { publish, sent, .. }) => {
                let mut again = Publish::clone(publish);
                again.dup = *sent && session_present;
                *sent = true;
                Packet::Publish(again)
            }
            Some(Request::Subscribe { filters, .. }) => {
                subscribe_packet(packet_id, filters.clone())
            }
            None => unreachable!("the ids come from the requests"),
        };
        if let Err(error) = self.queue(&packet) {
            let request = self.requests.release(packet_id).expect("found above");
            request.fail(error.into());
        }
    }
}
