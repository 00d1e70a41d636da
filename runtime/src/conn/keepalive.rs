//! Keepalive, on both sides of a connection: after `interval` without hearing anything from the
//! peer, send a ping; if nothing at all arrives within `timeout` of the ping, the peer is dead.
//!
//! Any frame counts as a sign of life, so a busy connection never pings. The timer is re-armed
//! lazily, when it fires, so hearing from the peer costs one clock read.

use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What to do now that the timer fired.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a ping with this nonce.
    Ping(u64),
    /// Nothing arrived for this long, ping included: close the connection.
    Dead(Duration),
}

/// One connection's keepalive state.
#[derive(Debug)]
pub(crate) struct Keepalive {
    /// `None`: keepalive is off.
    interval: Option<Duration>,
    timeout: Duration,
    last_heard: Instant,
    /// When the unanswered ping was sent.
    pinged_at: Option<Instant>,
    nonce: u64,
    timer: Pin<Box<Sleep>>,
}

impl Keepalive {
    pub(crate) fn new(interval: Option<Duration>, timeout: Duration) -> Keepalive {
        let now = Instant::now();
        let first = now + interval.unwrap_or(Duration::from_secs(3600));
        Keepalive {
            interval,
            timeout,
            last_heard: now,
            pinged_at: None,
            nonce: 0,
            timer: Box::pin(tokio::time::sleep_until(first)),
        }
    }

    /// Records that something arrived from the peer.
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.pinged_at = None;
    }

    /// Completes when a ping is due or the peer is dead; never, if keepalive is off. Safe to
    /// drop and call again (the state lives in `self`).
    pub(crate) async fn due(&mut self) -> Due {
        let Some(interval) = self.interval else {
            return std::future::pending().await;
        };
        loop {
            let target = match self.pinged_at {
                Some(pinged_at) => pinged_at + self.timeout,
                None => self.last_heard + interval,
            };
            // Re-arm only if the timer would fire too late (or has fired); firing early just
            // means checking again.
            if self.timer.deadline() > target || self.timer.is_elapsed() {
                self.timer.as_mut().reset(target);
            }
            self.timer.as_mut().await;
            let now = Instant::now();
            match self.pinged_at {
                Some(pinged_at) if now >= pinged_at + self.timeout => {
                    return Due::Dead(now.saturating_duration_since(self.last_heard));
                }
                None if now >= self.last_heard + interval => {
                    self.nonce += 1;
                    self.pinged_at = Some(now);
                    return Due::Ping(self.nonce);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_when_quiet_then_declares_the_peer_dead() {
        let mut keepalive = Keepalive::new(Some(Duration::from_secs(10)), Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(keepalive.due().await, Due::Ping(1));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(keepalive.due().await, Due::Dead(Duration::from_secs(15)));
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn hearing_anything_postpones_the_ping_and_answers_it() {
        let mut keepalive = Keepalive::new(Some(Duration::from_secs(10)), Duration::from_secs(5));
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(8)).await;
        keepalive.heard();
        assert_eq!(keepalive.due().await, Due::Ping(1));
        assert_eq!(start.elapsed(), Duration::from_secs(18));
        tokio::time::sleep(Duration::from_secs(1)).await;
        keepalive.heard();
        assert_eq!(keepalive.due().await, Due::Ping(2));
        assert_eq!(start.elapsed(), Duration::from_secs(29));
    }

    #[tokio::test(start_paused = true)]
    async fn off_means_never() {
        let mut keepalive = Keepalive::new(None, Duration::from_secs(1));
        let never = tokio::time::timeout(Duration::from_secs(86_400), keepalive.due()).await;
        assert!(never.is_err());
    }
}
