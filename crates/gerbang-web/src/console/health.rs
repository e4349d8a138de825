//! Delivery health at a glance (supervisors and administrators): the last 24 hours of delivery
//! attempts per hour as a stacked bar chart (delivered, waiting, failed, expired), the same per
//! channel and provider as a table, how long delivered codes took to arrive, the queue depth now
//! and the providers whose circuit is open. The charts are SVG drawn on the server from numbers
//! only, each with a text title and its numbers in a table beside it; no script.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, DurationRound, Utc};
use gerbang_core::StaffServiceError;
use gerbang_domain::delivery::budget::BudgetLevel;
use gerbang_domain::staff::Permission;
use gerbang_domain::verification::admission::Urgency;
use gerbang_store::Store;
use gerbang_store::health::DELIVERY_TIME_BOUNDS;

use super::Console;
use crate::browser::Browser;
use crate::catalogue::Lang;
use crate::page::{Layout, render};

/// Hours the page looks back.
const HOURS: i64 = 24;

/// How an attempt's status is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Delivered,
    Waiting,
    Failed,
    Expired,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Delivered, Kind::Waiting, Kind::Failed, Kind::Expired];

    fn of(status: &str) -> Self {
        match status {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => Self::Waiting,
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Self::Delivered => "#1e7b4d",
            Self::Waiting => "#6b7670",
            Self::Failed => "#b3261e",
            Self::Expired => "#9a5b00",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Delivered => "console.health_delivered",
            Self::Waiting => "console.health_waiting",
            Self::Failed => "console.health_failed",
            Self::Expired => "console.health_expired",
        }
    }
}

/// One row of the per-provider table.
#[derive(Debug, Default)]
pub struct ProviderRow {
    pub channel: String,
    pub provider: String,
    pub counts: [u64; 4],
    pub total: u64,
    pub delivered_share: String,
}

/// A brake of the SMS pumping brake, as the page lists it.
#[derive(Debug)]
pub struct BrakeRow {
    pub block: String,
    pub braked_at: String,
    pub sent: u64,
    pub verified: u64,
    /// Held until (WIB), or lifted by whom.
    pub state: String,
    pub holds: bool,
}

/// One channel's queue, as the admission table shows it.
#[derive(Debug)]
pub struct QueueRow {
    pub channel: &'static str,
    pub waiting: u64,
    /// Codes per second, or the catalogue's "not known yet".
    pub rate: String,
    pub wait: String,
    /// Catalogue keys of the urgencies refused now.
    pub refusing: Vec<&'static str>,
}

/// Codes a second as the table shows them: whole numbers, and a ceiling past which the reckoning
/// (a provider answering in microseconds, like the development inbox) says nothing useful.
fn rate_text(rate: f64) -> String {
    if rate >= 10_000.0 {
        "≥ 10000".to_owned()
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// A queue wait in whole seconds, rounded up; under a second said so.
fn wait_text(wait: Duration) -> String {
    if wait < Duration::seconds(1) {
        "< 1 s".to_owned()
    } else {
        format!("{} s", (wait.num_milliseconds() + 999) / 1000)
    }
}

/// One number block's codes over the last day, for the conversion table.
#[derive(Debug)]
pub struct BlockRow {
    pub block: String,
    pub operator: &'static str,
    pub sent: u64,
    pub verified: u64,
    pub conversion: String,
    pub braked: bool,
}

/// The blocks the conversion chart shows: the busiest of the last day.
const BUSIEST_BLOCKS: usize = 12;
/// The blocks read for the per-operator totals (a block of 10,000 numbers each; Indonesia's
/// allocated mobile prefixes hold far fewer blocks with traffic in a day).
const BLOCKS_READ: u32 = 100_000;

/// One operator's codes over the last day, summed over its blocks.
#[derive(Debug, Default)]
pub struct OperatorRow {
    pub operator: &'static str,
    pub sent: u64,
    pub verified: u64,
    pub conversion: String,
}

/// Horizontal bars, one per block: codes sent (light) with the share entered drawn over it (dark),
/// a braked block's bar in the alert colour and marked in words.
fn conversion_chart(lang: Lang, blocks: &[BlockRow]) -> String {
    let t = lang.catalogue();
    let busiest = blocks.iter().map(|b| b.sent).max().unwrap_or(0).max(1);
    // The block and its share entered come first, so that a phone shows them without scrolling
    // the chart sideways; a braked block says so after its bar.
    let (label_width, bar_width, row) = (170.0, 420.0, 26.0);
    let height = row * blocks.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" aria-label=\"{}\">",
        escape(t.get("console.conversion_title")),
        w = label_width + bar_width + 80.0,
    );
    for (i, block) in blocks.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let sent = bar_width * block.sent as f64 / busiest as f64;
        let entered = sent * block.verified as f64 / block.sent.max(1) as f64;
        let (light, dark) = if block.braked {
            ("#f4b9b2", "#b42318")
        } else {
            ("#b9d4f1", "#1d5fa6")
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{ty}\" font-size=\"14\">{} <tspan font-weight=\"bold\">{}</tspan></text>\
             <rect x=\"{label_width}\" y=\"{y}\" width=\"{sent:.1}\" height=\"18\" fill=\"{light}\"/>\
             <rect x=\"{label_width}\" y=\"{y}\" width=\"{entered:.1}\" height=\"18\" fill=\"{dark}\"/>",
            escape(&block.block),
            escape(&block.conversion),
            ty = y + 14.0,
        );
        if block.braked {
            let _ = write!(
                svg,
                "<text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"14\">{}</text>",
                escape(t.get("console.conversion_braked")),
                tx = label_width + sent + 6.0,
                ty = y + 14.0,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One daily count against its cap.
#[derive(Debug)]
pub struct BudgetRow {
    pub scope: &'static str,
    pub name: String,
    pub spent: u64,
    pub cap: Option<u64>,
    pub level: &'static str,
    pub over: bool,
}

#[derive(Template)]
#[template(path = "console_health.html")]
struct HealthPage {
    layout: Layout,
    queues: Vec<QueueRow>,
    budgets: Vec<BudgetRow>,
    blocks: Vec<BlockRow>,
    operators: Vec<OperatorRow>,
    conversion_svg: String,
    brakes: Vec<BrakeRow>,
    may_lift: bool,
    total: u64,
    delivered_share: String,
    queued: u64,
    open_circuits: Vec<String>,
    /// The hourly chart, SVG built here from numbers and catalogue words (escaped).
    hourly_svg: String,
    /// (hour label, counts per kind) for the table beside the chart.
    hourly: Vec<(String, [u64; 4])>,
    kinds: Vec<(&'static str, &'static str)>,
    providers: Vec<ProviderRow>,
    /// The same outcomes per operator (`provider` holds the operator's name).
    operator_rows: Vec<ProviderRow>,
    times_svg: String,
    times: Vec<(String, u64)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "—".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / total as f64)
    }
}

/// A stacked bar per hour.
fn hourly_chart(lang: Lang, hours: &[(String, [u64; 4])]) -> String {
    let t = lang.catalogue();
    let (width, height, left, bottom, top) = (720.0_f64, 220.0_f64, 44.0, 28.0, 12.0);
    let max = hours
        .iter()
        .map(|(_, counts)| counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = height - bottom - top;
    let step = (width - left) / hours.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"hourly-title\"><title id=\"hourly-title\">{}</title>",
        escape(t.get("console.health_hourly_title"))
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#6b7670\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#6b7670\"/>",
        height - bottom
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#1a1f1c\">{max}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#1a1f1c\">0</text>",
        left - 6.0,
        top + 10.0,
        left - 6.0,
        height - bottom
    );
    for (index, (label, counts)) in hours.iter().enumerate() {
        let x = left + index as f64 * step + step * 0.15;
        let mut y = height - bottom;
        for kind in Kind::ALL {
            let count = counts[kind as usize];
            if count == 0 {
                continue;
            }
            let h = plot * count as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                step * 0.7,
                kind.colour()
            );
        }
        if index % 6 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"12\" fill=\"#1a1f1c\">{}</text>",
                height - 8.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A bar per delivery-time bucket.
fn times_chart(lang: Lang, times: &[(String, u64)]) -> String {
    let t = lang.catalogue();
    let (width, row, left) = (720.0_f64, 30.0_f64, 90.0_f64);
    let height = row * times.len() as f64 + 8.0;
    let max = times.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"times-title\"><title id=\"times-title\">{}</title>",
        escape(t.get("console.health_times_title"))
    );
    for (index, (label, count)) in times.iter().enumerate() {
        let y = 4.0 + index as f64 * row;
        let w = (width - left - 60.0) * *count as f64 / max as f64;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"13\" fill=\"#1a1f1c\">{}</text><rect x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"#1e7b4d\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"#1a1f1c\">{count}</text>",
            left - 8.0,
            y + row * 0.6,
            escape(label),
            row * 0.7,
            left + w + 6.0,
            y + row * 0.6
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The hour on the WIB clock, `14.00`: staff across the country read the console in WIB.
fn wib_hour(at: chrono::DateTime<Utc>) -> String {
    let wib = chrono::FixedOffset::east_opt(7 * 3600).map(|zone| at.with_timezone(&zone));
    wib.map_or_else(
        || at.format("%H.00").to_string(),
        |at| at.format("%H.00").to_string(),
    )
}

fn time_labels() -> Vec<String> {
    let mut labels = Vec::new();
    let mut low = 0;
    for bound in DELIVERY_TIME_BOUNDS {
        labels.push(format!("{low}–{bound} s"));
        low = bound;
    }
    labels.push(format!("> {low} s"));
    labels
}

/// `GET /staff/health`.
pub async fn page<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match console
        .allowed(&browser, Permission::ViewDeliveryHealth, "/staff/health")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let lang = browser.lang;
    let now = console.accounts.engine().now();
    // Whole hours, so that the bars line up with the clock.
    let since = now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(HOURS - 1);
    let store = &console.store;
    let read = async {
        Ok::<_, gerbang_store::StoreError>((
            store.attempt_counts(since, 3600).await?,
            store.delivery_times(since).await?,
            store.queued_messages().await?,
            store.brakes(now, now - Duration::hours(HOURS)).await?,
            store
                .busiest_blocks(now - Duration::hours(HOURS), BLOCKS_READ)
                .await?,
            store.operator_counts(since).await?,
        ))
    };
    let (counts, delivery, queued, brakes, busiest, by_operator) = match read.await {
        Ok(read) => read,
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    let mut hourly: Vec<(String, [u64; 4])> = (0..HOURS)
        .map(|hour| {
            let at = since + Duration::hours(hour);
            (wib_hour(at), [0; 4])
        })
        .collect();
    let mut providers: BTreeMap<(String, String), ProviderRow> = BTreeMap::new();
    for count in counts {
        let kind = Kind::of(&count.status) as usize;
        if let Some((_, bars)) = usize::try_from(count.bucket)
            .ok()
            .and_then(|bucket| hourly.get_mut(bucket))
        {
            bars[kind] += count.count;
        }
        let row = providers
            .entry((count.channel.clone(), count.provider.clone()))
            .or_insert_with(|| ProviderRow {
                channel: count.channel.clone(),
                provider: count.provider.clone(),
                ..ProviderRow::default()
            });
        row.counts[kind] += count.count;
        row.total += count.count;
    }
    let mut providers: Vec<ProviderRow> = providers.into_values().collect();
    for row in &mut providers {
        row.delivered_share = share(row.counts[Kind::Delivered as usize], row.total);
    }
    // The same outcomes per mobile operator (email has none): a failing network shows as its row.
    let mut operator_rows: BTreeMap<String, ProviderRow> = BTreeMap::new();
    for (operator, status, count) in by_operator {
        let row = operator_rows
            .entry(operator.clone())
            .or_insert_with(|| ProviderRow {
                provider: operator,
                ..ProviderRow::default()
            });
        row.counts[Kind::of(&status) as usize] += count;
        row.total += count;
    }
    let mut operator_rows: Vec<ProviderRow> = operator_rows.into_values().collect();
    for row in &mut operator_rows {
        row.delivered_share = share(row.counts[Kind::Delivered as usize], row.total);
    }
    let total: u64 = providers.iter().map(|row| row.total).sum();
    let delivered: u64 = providers
        .iter()
        .map(|row| row.counts[Kind::Delivered as usize])
        .sum();
    let mut times: Vec<(String, u64)> = time_labels().into_iter().map(|l| (l, 0)).collect();
    for (bucket, count) in delivery {
        if let Some((_, n)) = usize::try_from(bucket).ok().and_then(|b| times.get_mut(b)) {
            *n += count;
        }
    }
    let open_circuits = console
        .accounts
        .engine()
        .pace()
        .providers()
        .into_iter()
        .filter(|provider| provider.open)
        .map(|provider| provider.name)
        .collect();
    let t = lang.catalogue();
    let mut operators: BTreeMap<&'static str, OperatorRow> = BTreeMap::new();
    let mut blocks: Vec<BlockRow> = busiest
        .into_iter()
        .map(|(block, sent, verified)| BlockRow {
            operator: gerbang_domain::MobileNumber::parse(&format!("{block}0000"))
                .map_or("—", |number| number.operator().name()),
            conversion: share(verified, sent),
            braked: brakes
                .iter()
                .any(|brake| brake.block == block && brake.holds(now)),
            block,
            sent,
            verified,
        })
        .collect();
    for block in &blocks {
        let row = operators.entry(block.operator).or_default();
        row.operator = block.operator;
        row.sent += block.sent;
        row.verified += block.verified;
    }
    let mut operators: Vec<OperatorRow> = operators.into_values().collect();
    for row in &mut operators {
        row.conversion = share(row.verified, row.sent);
    }
    operators.sort_by_key(|row| std::cmp::Reverse(row.sent));
    blocks.truncate(BUSIEST_BLOCKS);
    let brakes = brakes
        .into_iter()
        .map(|brake| BrakeRow {
            holds: brake.holds(now),
            state: match &brake.lifted_by {
                Some(by) => t.fill("console.brake_lifted_by", &[("by", by)]),
                None if brake.holds(now) => t.fill(
                    "console.brake_held_until",
                    &[(
                        "time",
                        &crate::page::on_their_clock(
                            lang,
                            gerbang_domain::identity::IndonesianTimeZone::Wib,
                            brake.until,
                        ),
                    )],
                ),
                None => t.get("console.brake_ended").to_owned(),
            },
            braked_at: crate::page::on_their_clock(
                lang,
                gerbang_domain::identity::IndonesianTimeZone::Wib,
                brake.braked_at,
            ),
            sent: brake.sent,
            verified: brake.verified,
            block: brake.block,
        })
        .collect();
    let engine = console.accounts.engine();
    let queues = engine
        .admission()
        .state(engine.pace(), now)
        .into_iter()
        .filter(|queue| queue.waiting > 0 || queue.per_second.is_some())
        .map(|queue| QueueRow {
            channel: queue.channel.as_str(),
            waiting: queue.waiting,
            rate: queue
                .per_second
                .map_or_else(|| t.get("console.admission_unknown").to_owned(), rate_text),
            wait: queue
                .wait
                .map_or_else(|| t.get("console.admission_unknown").to_owned(), wait_text),
            refusing: queue
                .refusing
                .iter()
                .map(|urgency| match urgency {
                    Urgency::Registration => "console.urgency_registration",
                    Urgency::Login => "console.urgency_login",
                    Urgency::Transaction => "console.urgency_transaction",
                })
                .collect(),
        })
        .collect();
    let budgets = engine
        .budgets()
        .states(now)
        .into_iter()
        .map(|budget| BudgetRow {
            scope: if budget.scope == "channel" {
                "console.budget_scope_channel"
            } else {
                "console.budget_scope_provider"
            },
            name: budget.name,
            spent: budget.spent,
            cap: budget.cap,
            over: budget.level != BudgetLevel::Within,
            level: match budget.level {
                BudgetLevel::Within => "console.budget_within",
                BudgetLevel::Alert => "console.budget_alert",
                BudgetLevel::Exhausted => "console.budget_exhausted",
            },
        })
        .collect();
    let page = HealthPage {
        conversion_svg: conversion_chart(lang, &blocks),
        blocks,
        operators,
        queues,
        budgets,
        brakes,
        may_lift: session.may(Permission::LiftBrakes).is_ok(),
        layout: console.layout(
            &browser,
            Some(&session),
            "console.health_title",
            "/staff/health",
        ),
        total,
        delivered_share: share(delivered, total),
        queued,
        open_circuits,
        hourly_svg: hourly_chart(lang, &hourly),
        hourly,
        kinds: Kind::ALL.iter().map(|k| (k.key(), k.colour())).collect(),
        providers,
        operator_rows,
        times_svg: times_chart(lang, &times),
        times,
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct LiftForm {
    csrf: String,
    block: String,
    reason: String,
}

/// `POST /staff/health/lift`: a supervisor lifts the brake on a number block (after checking
/// with the operator that the traffic is real), with the reason recorded.
pub async fn lift<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    crate::PageForm(form): crate::PageForm<LiftForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match console
        .allowed(&browser, Permission::LiftBrakes, "/staff/health/lift")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let reason = form.reason.trim().chars().take(200).collect::<String>();
    if reason.chars().count() < 5 {
        return console.problem(
            &browser,
            Some(&session),
            StatusCode::UNPROCESSABLE_ENTITY,
            "console.brake_reason_title",
            "console.reason_missing",
        );
    }
    let now = console.accounts.engine().now();
    match gerbang_core::pumping::lift(
        &console.store,
        form.block.trim(),
        &session.actor(),
        &reason,
        now,
    )
    .await
    {
        Ok(true) => {
            console
                .accounts
                .engine()
                .brake()
                .forget(form.block.trim(), now);
            crate::page::see_other(
                "/staff/health",
                axum::http::HeaderMap::new(),
                &browser,
                console.cookies,
            )
        }
        Ok(false) => console.problem(
            &browser,
            Some(&session),
            StatusCode::NOT_FOUND,
            "console.not_found_title",
            "console.brake_not_found",
        ),
        Err(error) => console.unavailable(&browser, &StaffServiceError::Store(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_hour_and_words_are_escaped() {
        let hours = vec![
            ("<00.00>".to_owned(), [10, 0, 0, 0]),
            ("01.00".to_owned(), [5, 0, 5, 0]),
        ];
        let svg = hourly_chart(Lang::En, &hours);
        assert!(svg.contains("&lt;00.00&gt;"), "{svg}");
        assert!(!svg.contains("<00.00>"));
        // The busiest hour's delivered bar is the whole plot; the other hour's two halves.
        assert!(svg.contains("height=\"180.0\" fill=\"#1e7b4d\""), "{svg}");
        assert_eq!(svg.matches("height=\"90.0\"").count(), 2, "{svg}");
        assert_eq!(time_labels().len(), DELIVERY_TIME_BOUNDS.len() + 1);
        assert_eq!(share(1, 3), "33.3 %");
        assert_eq!(share(0, 0), "—");
    }

    #[test]
    fn conversion_bars_scale_to_the_busiest_block_and_mark_a_braked_one() {
        let row = |block: &str, sent, verified, braked| BlockRow {
            block: block.to_owned(),
            operator: "Telkomsel",
            sent,
            verified,
            conversion: share(verified, sent),
            braked,
        };
        let blocks = vec![
            row("+6281299990", 200, 2, true),
            row("+62812<b>", 100, 80, false),
        ];
        let svg = conversion_chart(Lang::En, &blocks);
        // The busiest block's bar is the whole width, its entered share 1 % of it, in red.
        assert!(
            svg.contains("width=\"420.0\" height=\"18\" fill=\"#f4b9b2\""),
            "{svg}"
        );
        assert!(
            svg.contains("width=\"4.2\" height=\"18\" fill=\"#b42318\""),
            "{svg}"
        );
        // The other: half as long, 80 % of it entered, in blue.
        assert!(
            svg.contains("width=\"210.0\" height=\"18\" fill=\"#b9d4f1\""),
            "{svg}"
        );
        assert!(
            svg.contains("width=\"168.0\" height=\"18\" fill=\"#1d5fa6\""),
            "{svg}"
        );
        assert_eq!(svg.matches("braked").count(), 1, "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert_eq!(rate_text(3_291_314.2), "≥ 10000");
        assert_eq!(rate_text(49.6), "50");
        assert_eq!(rate_text(0.25), "0.2");
        assert_eq!(wait_text(Duration::milliseconds(3)), "< 1 s");
        assert_eq!(wait_text(Duration::milliseconds(60_001)), "61 s");
    }
}
