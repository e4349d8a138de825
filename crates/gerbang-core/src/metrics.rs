//! What operators watch (SPEC §6): hand-offs, refusals by cause, drops, deferrals and circuit state
//! per provider; receipts and the ones that matched nothing; refused webhooks; the outbox depth.
//! One [`Metrics`] is shared by the worker, the receipt tasks and the HTTP routes, and rendered in
//! the Prometheus / OpenMetrics text format at `/metrics`. Labels never carry personal data: a
//! provider's name, a channel, a cause code, a status.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderChannel {
    pub provider: String,
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderCause {
    pub provider: String,
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderStatus {
    pub provider: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOnly {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UrgencyLabel {
    pub urgency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelOnly {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabel {
    pub scope: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: String,
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handoffs: Family<ProviderChannel, Counter>,
    refusals: Family<ProviderCause, Counter>,
    dropped: Family<Reason, Counter>,
    deferred: Counter,
    circuit_open: Family<ProviderOnly, Gauge>,
    receipts: Family<ProviderStatus, Counter>,
    receipts_unmatched: Family<ProviderOnly, Counter>,
    webhook_rejections: Family<Kind, Counter>,
    outbox_queued: Gauge,
    blocks_braked: Gauge,
    admission_refused: Family<UrgencyLabel, Counter>,
    queue_wait: Family<ChannelOnly, Gauge<f64, AtomicU64>>,
    budget_refused: Family<ChannelOnly, Counter>,
    budget_spent: Family<BudgetLabel, Gauge>,
    budget_used: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gerbang");
        let metrics = Self {
            handoffs: Family::default(),
            refusals: Family::default(),
            dropped: Family::default(),
            deferred: Counter::default(),
            circuit_open: Family::default(),
            receipts: Family::default(),
            receipts_unmatched: Family::default(),
            webhook_rejections: Family::default(),
            outbox_queued: Gauge::default(),
            blocks_braked: Gauge::default(),
            admission_refused: Family::default(),
            queue_wait: Family::default(),
            budget_refused: Family::default(),
            budget_spent: Family::default(),
            budget_used: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "delivery_handoffs",
            "Messages a provider took",
            metrics.handoffs.clone(),
        );
        registry.register(
            "delivery_refusals",
            "Tries a provider refused, by cause",
            metrics.refusals.clone(),
        );
        registry.register(
            "delivery_dropped",
            "Messages given up: code expired in the queue, refused everywhere, no route, no time left",
            metrics.dropped.clone(),
        );
        registry.register(
            "delivery_deferred",
            "Rounds in which no provider took a message that may go later",
            metrics.deferred.clone(),
        );
        registry.register(
            "provider_circuit_open",
            "1 while a provider is skipped by its circuit breaker",
            metrics.circuit_open.clone(),
        );
        registry.register(
            "delivery_receipts",
            "Delivery receipts and status callbacks applied, by status",
            metrics.receipts.clone(),
        );
        registry.register(
            "delivery_receipts_unmatched",
            "Receipts for a message id we never sent (or not yet recorded)",
            metrics.receipts_unmatched.clone(),
        );
        registry.register(
            "webhook_rejections",
            "Provider callbacks refused, by kind",
            metrics.webhook_rejections.clone(),
        );
        registry.register(
            "outbox_queued",
            "Messages waiting to be handed off",
            metrics.outbox_queued.clone(),
        );
        registry.register(
            "number_blocks_braked",
            "Number blocks whose codes the SMS pumping brake holds now",
            metrics.blocks_braked.clone(),
        );
        registry.register(
            "admission_refused",
            "New codes refused with queue_full, by urgency",
            metrics.admission_refused.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "The wait a new code would have in the outbox, by channel",
            metrics.queue_wait.clone(),
        );
        registry.register(
            "budget_refused",
            "New codes refused with budget_exhausted, by channel",
            metrics.budget_refused.clone(),
        );
        registry.register(
            "sends_today",
            "Codes accepted per channel and hand-offs per provider since 00:00 WIB",
            metrics.budget_spent.clone(),
        );
        registry.register(
            "budget_used_ratio",
            "Today's count over its daily cap, for the counts that have one",
            metrics.budget_used.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn handed_off(&self, provider: &str, channel: &str) {
        self.handoffs
            .get_or_create(&ProviderChannel {
                provider: provider.to_owned(),
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub fn refused(&self, provider: &str, cause: &str) {
        self.refusals
            .get_or_create(&ProviderCause {
                provider: provider.to_owned(),
                cause: cause.to_owned(),
            })
            .inc();
    }

    pub fn dropped(&self, reason: &str) {
        self.dropped
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn deferred(&self) {
        self.deferred.inc();
    }

    pub fn circuit(&self, provider: &str, open: bool) {
        self.circuit_open
            .get_or_create(&ProviderOnly {
                provider: provider.to_owned(),
            })
            .set(i64::from(open));
    }

    /// A receipt applied (`matched`) or matching no attempt.
    pub fn receipt(&self, provider: &str, status: &str, matched: bool) {
        if matched {
            self.receipts
                .get_or_create(&ProviderStatus {
                    provider: provider.to_owned(),
                    status: status.to_owned(),
                })
                .inc();
        } else {
            self.receipts_unmatched
                .get_or_create(&ProviderOnly {
                    provider: provider.to_owned(),
                })
                .inc();
        }
    }

    pub fn webhook_rejected(&self, kind: &str) {
        self.webhook_rejections
            .get_or_create(&Kind {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn set_outbox_queued(&self, queued: u64) {
        self.outbox_queued
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    pub fn set_blocks_braked(&self, braked: usize) {
        self.blocks_braked
            .set(i64::try_from(braked).unwrap_or(i64::MAX));
    }

    pub fn admission_refused(&self, urgency: &str) {
        self.admission_refused
            .get_or_create(&UrgencyLabel {
                urgency: urgency.to_owned(),
            })
            .inc();
    }

    pub fn set_queue_wait(&self, channel: &str, seconds: f64) {
        self.queue_wait
            .get_or_create(&ChannelOnly {
                channel: channel.to_owned(),
            })
            .set(seconds);
    }

    pub fn budget_refused(&self, channel: &str) {
        self.budget_refused
            .get_or_create(&ChannelOnly {
                channel: channel.to_owned(),
            })
            .inc();
    }

    /// Today's count of a budget `scope` (`channel`, `provider`) and, with a cap, its share used.
    pub fn set_budget(&self, scope: &str, name: &str, spent: u64, cap: Option<u64>) {
        let label = BudgetLabel {
            scope: scope.to_owned(),
            name: name.to_owned(),
        };
        self.budget_spent
            .get_or_create(&label)
            .set(i64::try_from(spent).unwrap_or(i64::MAX));
        if let Some(cap) = cap.filter(|cap| *cap > 0) {
            self.budget_used
                .get_or_create(&label)
                .set(spent as f64 / cap as f64);
        }
    }

    /// The text exposition format (OpenMetrics).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_with_its_labels() {
        let metrics = Metrics::default();
        metrics.handed_off("smpp:telkomsel", "sms");
        metrics.handed_off("smpp:telkomsel", "sms");
        metrics.refused("aggregator", "provider_throttled");
        metrics.dropped("expired_in_queue");
        metrics.deferred();
        metrics.circuit("aggregator", true);
        metrics.receipt("smpp:telkomsel", "delivered", true);
        metrics.receipt("smpp:telkomsel", "delivered", false);
        metrics.webhook_rejected("bad_signature");
        metrics.set_outbox_queued(42);
        metrics.admission_refused("registration");
        metrics.set_queue_wait("sms", 12.5);
        metrics.budget_refused("sms");
        metrics.set_budget("provider", "smpp:primary", 80, Some(100));
        let text = metrics.render();
        for line in [
            "gerbang_delivery_handoffs_total{provider=\"smpp:telkomsel\",channel=\"sms\"} 2",
            "gerbang_delivery_refusals_total{provider=\"aggregator\",cause=\"provider_throttled\"} 1",
            "gerbang_delivery_dropped_total{reason=\"expired_in_queue\"} 1",
            "gerbang_delivery_deferred_total 1",
            "gerbang_provider_circuit_open{provider=\"aggregator\"} 1",
            "gerbang_delivery_receipts_total{provider=\"smpp:telkomsel\",status=\"delivered\"} 1",
            "gerbang_delivery_receipts_unmatched_total{provider=\"smpp:telkomsel\"} 1",
            "gerbang_webhook_rejections_total{kind=\"bad_signature\"} 1",
            "gerbang_outbox_queued 42",
            "gerbang_admission_refused_total{urgency=\"registration\"} 1",
            "gerbang_queue_wait_seconds{channel=\"sms\"} 12.5",
            "gerbang_budget_refused_total{channel=\"sms\"} 1",
            "gerbang_sends_today{scope=\"provider\",name=\"smpp:primary\"} 80",
            "gerbang_budget_used_ratio{scope=\"provider\",name=\"smpp:primary\"} 0.8",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
