//! Rendering of each family's series: label combinations are walked in index order;
//! series of multi-label families that never moved are skipped, single-enum families and
//! unlabeled counters are always shown (so dashboards see explicit zeros).

use super::labels::{
    AlertRule, Direction, FailMode, GuardrailAction, Queue, RateLimitKind, Route, RouteEvent,
    ShadowKind, Status, UpstreamErrorClass,
};
use super::render::Writer;
use super::{MetricName, Metrics};

impl Metrics {
    pub(super) fn render_family(&self, w: &mut Writer, family: MetricName) {
        let name = family.name();
        let (m, p) = (self.models.len(), self.providers.len());
        match family {
            MetricName::RequestsTotal => {
                for (ri, route) in Route::ALL.iter().enumerate() {
                    for mi in 0..m {
                        for pi in 0..p {
                            for si in 0..Status::COUNT {
                                let v = self
                                    .requests
                                    .get(((ri * m + mi) * p + pi) * Status::COUNT + si);
                                if v == 0 {
                                    continue;
                                }
                                let status = Status::text(si);
                                let labels = [
                                    ("route", route.label()),
                                    ("model", self.models.label(mi)),
                                    ("provider", self.providers.label(pi)),
                                    ("status", status.as_str()),
                                ];
                                w.sample(name, &labels, v as f64);
                            }
                        }
                    }
                }
            }
            MetricName::RequestDuration | MetricName::GatewayOverhead => {
                let h = if family == MetricName::RequestDuration {
                    &self.duration
                } else {
                    &self.overhead
                };
                for (ri, route) in Route::ALL.iter().enumerate() {
                    if let Some(s) = h.snapshot(ri) {
                        w.histogram(name, &[("route", route.label())], &s);
                    }
                }
            }
            MetricName::UpstreamSeconds => {
                for pi in 0..p {
                    if let Some(s) = self.upstream.snapshot(pi) {
                        w.histogram(name, &[("provider", self.providers.label(pi))], &s);
                    }
                }
            }
            MetricName::TimeToFirstToken => {
                for mi in 0..m {
                    if let Some(s) = self.ttft.snapshot(mi) {
                        w.histogram(name, &[("model", self.models.label(mi))], &s);
                    }
                }
            }
            MetricName::TokensTotal => {
                for (di, dir) in Direction::ALL.iter().enumerate() {
                    for mi in 0..m {
                        let v = self.tokens.get(di * m + mi);
                        if v > 0 {
                            let labels =
                                [("direction", dir.label()), ("model", self.models.label(mi))];
                            w.sample(name, &labels, v as f64);
                        }
                    }
                }
            }
            MetricName::CostMicrosTotal => {
                let t = self.teams.len();
                for mi in 0..m {
                    for ti in 0..t {
                        let v = self.cost.get(mi * t + ti);
                        if let (true, Some(team)) = (v > 0, self.teams.label(ti)) {
                            let labels = [("model", self.models.label(mi)), ("team", team)];
                            w.sample(name, &labels, v as f64);
                        }
                    }
                }
            }
            MetricName::CacheHitsTotal => w.sample(name, &[], self.cache_hits.get(0) as f64),
            MetricName::CacheMissesTotal => w.sample(name, &[], self.cache_misses.get(0) as f64),
            MetricName::RateLimitRejectionsTotal => {
                for k in RateLimitKind::ALL {
                    let v = self.rate_limited.get(k.index());
                    w.sample(name, &[("kind", k.label())], v as f64);
                }
            }
            MetricName::BudgetRejectionsTotal => w.sample(name, &[], self.budget.get(0) as f64),
            MetricName::GuardrailActionsTotal => {
                let a = GuardrailAction::ALL.len();
                for ri in 0..self.rules.len() {
                    for action in GuardrailAction::ALL {
                        let v = self.guardrail.get(ri * a + action.index());
                        if let (true, Some(rule)) = (v > 0, self.rules.label(ri)) {
                            let labels = [("rule", rule), ("action", action.label())];
                            w.sample(name, &labels, v as f64);
                        }
                    }
                }
            }
            MetricName::UpstreamErrorsTotal => {
                for class in UpstreamErrorClass::ALL {
                    for pi in 0..p {
                        let v = self.upstream_errors.get(class.index() * p + pi);
                        if v > 0 {
                            let labels = [
                                ("class", class.label()),
                                ("provider", self.providers.label(pi)),
                            ];
                            w.sample(name, &labels, v as f64);
                        }
                    }
                }
            }
            MetricName::BreakerState => {
                for ti in 0..self.targets.len() {
                    if let (Some(v), Some(target)) = (self.breaker.get(ti), self.targets.label(ti))
                    {
                        w.sample(name, &[("target", target)], v as f64);
                    }
                }
            }
            MetricName::UpstreamInFlight => {
                for ti in 0..self.targets.len() {
                    if let (Some(v), Some(target)) =
                        (self.in_flight.get(ti), self.targets.label(ti))
                    {
                        w.sample(name, &[("target", target)], v as f64);
                    }
                }
            }
            MetricName::RouteEventsTotal => {
                for event in RouteEvent::ALL {
                    for mi in 0..m {
                        let v = self.route_events.get(event.index() * m + mi);
                        if v > 0 {
                            let labels =
                                [("model", self.models.label(mi)), ("event", event.label())];
                            w.sample(name, &labels, v as f64);
                        }
                    }
                }
            }
            MetricName::QueueDepth => {
                for q in Queue::ALL {
                    if let Some(v) = self.queue_depth.get(q.index()) {
                        w.sample(name, &[("queue", q.label())], v as f64);
                    }
                }
            }
            MetricName::QueueDroppedTotal => {
                for q in Queue::ALL {
                    let v = self.queue_dropped.get(q.index());
                    w.sample(name, &[("queue", q.label())], v as f64);
                }
            }
            MetricName::ShadowDifferencesTotal => {
                for k in ShadowKind::ALL {
                    w.sample(
                        name,
                        &[("kind", k.label())],
                        self.shadow.get(k.index()) as f64,
                    );
                }
            }
            MetricName::LimiterFailModeTotal => {
                for mode in FailMode::ALL {
                    let v = self.fail_mode.get(mode.index());
                    w.sample(name, &[("mode", mode.label())], v as f64);
                }
            }
            MetricName::AlertsTotal => {
                for rule in AlertRule::ALL {
                    let v = self.alerts.get(rule.index());
                    w.sample(name, &[("rule", rule.label())], v as f64);
                }
            }
        }
    }
}
