//! Turns the results of every run into markdown tables and a check of the targets.

use crate::cases::Case;
use crate::imp::Impl;
use crate::stats::median_min_max;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The numbers one child process reported.
pub type Parsed = Vec<(String, f64)>;

/// Every run's numbers, for one table, by case and implementation.
#[derive(Debug, Default)]
pub struct Table {
    /// Each run's numbers, with the round of the suite (1 to `--runs`) it was made in.
    runs: HashMap<(Case, Impl), Vec<(usize, Parsed)>>,
}

impl Table {
    /// Adds the numbers of one run, made in round `round` of the suite.
    pub fn add(&mut self, case: Case, imp: Impl, round: usize, parsed: Parsed) {
        self.runs.entry((case, imp)).or_default().push((round, parsed));
    }

    /// Every run's value of `key` for `case` and `imp`, with its round.
    fn rounds(&self, case: Case, imp: Impl, key: &str) -> Vec<(usize, f64)> {
        let Some(runs) = self.runs.get(&(case, imp)) else { return Vec::new() };
        runs.iter().filter_map(|(round, run)| run.iter().find(|(k, _)| k == key).map(|&(_, v)| (*round, v))).collect()
    }

    /// Every run's value of `key` for `case` and `imp`.
    pub fn values(&self, case: Case, imp: Impl, key: &str) -> Vec<f64> {
        self.rounds(case, imp, key).into_iter().map(|(_, v)| v).collect()
    }

    /// `a`'s value of `key` over `b`'s, round by round (each round runs the implementations one
    /// right after the other), for the rounds both have.
    pub fn paired_ratios(&self, case: Case, a: Impl, b: Impl, key: &str) -> Vec<f64> {
        let bs = self.rounds(case, b, key);
        self.rounds(case, a, key)
            .into_iter()
            .filter_map(|(round, va)| bs.iter().find(|(r, _)| *r == round).map(|(_, vb)| va / vb))
            .collect()
    }

    /// The median over runs of `key` for `case` and `imp`.
    pub fn median(&self, case: Case, imp: Impl, key: &str) -> Option<f64> {
        median_min_max(&self.values(case, imp, key)).map(|(median, _, _)| median)
    }
}

/// One row of a table: a number reported by one case.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The case reporting it.
    pub case: Case,
    /// Its key in the case's result line.
    pub key: &'static str,
    /// What the row shows.
    pub label: &'static str,
    /// Decimals shown for values below 1,000.
    pub decimals: usize,
}

const fn row(case: Case, key: &'static str, label: &'static str, decimals: usize) -> Row {
    Row { case, key, label, decimals }
}

/// The rows of the one-process table.
pub const ONE_PROCESS_ROWS: &[Row] = &[
    row(Case::Seq, "p50_us", "1. sequential latency p50 (µs)", 1),
    row(Case::Seq, "p99_us", "1. sequential latency p99 (µs)", 1),
    row(Case::Seq, "p999_us", "1. sequential latency p99.9 (µs)", 1),
    row(Case::Seq, "calls_per_s", "1. sequential calls/s", 0),
    row(Case::Tput(1), "calls_per_s", "2. throughput, 1 in flight (calls/s)", 0),
    row(Case::Tput(64), "calls_per_s", "2. throughput, 64 in flight (calls/s)", 0),
    row(Case::Tput(256), "calls_per_s", "2. throughput, 256 in flight (calls/s)", 0),
    row(Case::Tput(1024), "calls_per_s", "2. throughput, 1,024 in flight (calls/s)", 0),
    row(Case::Conns, "calls_per_s", "3. throughput, 16 connections x 16 in flight (calls/s)", 0),
    row(Case::Payload(16), "calls_per_s", "4. payload 16 B (calls/s)", 0),
    row(Case::Payload(16), "mb_per_s", "4. payload 16 B (MB/s)", 2),
    row(Case::Payload(1024), "calls_per_s", "4. payload 1 KiB (calls/s)", 0),
    row(Case::Payload(1024), "mb_per_s", "4. payload 1 KiB (MB/s)", 1),
    row(Case::Payload(65536), "calls_per_s", "4. payload 64 KiB (calls/s)", 0),
    row(Case::Payload(65536), "mb_per_s", "4. payload 64 KiB (MB/s)", 0),
    row(Case::Payload(1048576), "calls_per_s", "4. payload 1 MiB (calls/s)", 0),
    row(Case::Payload(1048576), "mb_per_s", "4. payload 1 MiB (MB/s)", 0),
    row(Case::Cancel, "median_us", "5. cancel-to-drop median (µs)", 1),
    row(Case::Cancel, "p99_us", "5. cancel-to-drop p99 (µs)", 1),
    row(Case::Cancel, "max_us", "5. cancel-to-drop max (µs)", 1),
    row(Case::Tput(256), "rss_mib", "6. peak RSS, 256 in flight (MiB)", 1),
    row(Case::Tput(256), "cpu_us_per_call", "6. CPU time per call, both sides, 256 in flight (µs)", 2),
    row(Case::Tput(256), "syscalls_per_call", "6. system calls per call, both sides, 256 in flight", 2),
    row(Case::Tput(1024), "rss_mib", "6. peak RSS, 1,024 in flight (MiB)", 1),
    row(Case::Cost, "allocs_client", "6. heap allocations per echo call, client", 2),
    row(Case::Cost, "allocs_server", "6. heap allocations per echo call, server", 2),
    row(Case::Cost, "allocs_total", "6. heap allocations per echo call, total", 2),
    row(Case::Cost, "alloc_bytes_client", "6. heap bytes allocated per echo call, client", 0),
    row(Case::Cost, "alloc_bytes_server", "6. heap bytes allocated per echo call, server", 0),
    row(Case::Cost, "wire_sent", "6. bytes on the wire per echo call, request", 1),
    row(Case::Cost, "wire_received", "6. bytes on the wire per echo call, response", 1),
    row(Case::Cost, "wire_bytes", "6. bytes on the wire per echo call, total", 1),
    row(Case::Busy, "median_ms", "7. new connection's echo while a handler computes 300 ms, median (ms)", 1),
    row(Case::Busy, "max_ms", "7. new connection's echo while a handler computes 300 ms, max (ms)", 1),
    row(Case::Structs, "frozen_p50_us", "13. @frozen struct echo p50 (µs)", 2),
    row(Case::Structs, "evolvable_p50_us", "13. evolvable struct echo p50 (µs)", 2),
    row(Case::Structs, "frozen_calls_per_s", "13. @frozen struct echo, 256 in flight (calls/s)", 0),
    row(Case::Structs, "evolvable_calls_per_s", "13. evolvable struct echo, 256 in flight (calls/s)", 0),
    row(Case::Tls, "plain_p50_us", "15. echo p50 over plain TCP (µs)", 2),
    row(Case::Tls, "tls_p50_us", "15. echo p50 over TLS 1.3 (µs)", 2),
    row(Case::Tls, "plain_calls_per_s", "15. echo over plain TCP, 256 in flight (calls/s)", 0),
    row(Case::Tls, "tls_calls_per_s", "15. echo over TLS 1.3, 256 in flight (calls/s)", 0),
    row(Case::Layers, "plain_p50_us", "16. echo p50 without tower layers (µs)", 2),
    row(Case::Layers, "server_layers_p50_us", "16. echo p50 through a server stack (µs)", 2),
    row(Case::Layers, "client_layers_p50_us", "16. echo p50 through a client stack (µs)", 2),
    row(Case::Layers, "plain_calls_per_s", "16. echo without layers, 256 in flight (calls/s)", 0),
    row(Case::Layers, "server_layers_calls_per_s", "16. echo through a server stack, 256 in flight (calls/s)", 0),
    row(Case::Layers, "client_layers_calls_per_s", "16. echo through a client stack, 256 in flight (calls/s)", 0),
    row(Case::Inline, "spawned_p50_us", "17. echo p50, handlers spawned (µs)", 2),
    row(Case::Inline, "inline_p50_us", "17. echo p50, handlers polled inline first (µs)", 2),
    row(Case::Inline, "spawned_calls_per_s", "17. echo, handlers spawned, 256 in flight (calls/s)", 0),
    row(Case::Inline, "inline_calls_per_s", "17. echo, handlers inline, 256 in flight (calls/s)", 0),
    row(Case::Inline, "spawned_cpu_us_per_call", "17. CPU per call, handlers spawned, 256 in flight (µs)", 2),
    row(Case::Inline, "inline_cpu_us_per_call", "17. CPU per call, handlers inline, 256 in flight (µs)", 2),
    row(Case::Storm, "storm_ms", "14. storm: 10,000 connections at once, all handshaken (ms)", 0),
    row(Case::Storm, "slowest_ms", "14. storm: slowest connection (ms)", 0),
    row(Case::Storm, "handshakes_per_s", "14. storm: handshakes/s", 0),
    row(Case::Storm, "accepts_per_s", "14. storm: server accepts/s", 0),
    row(Case::Storm, "listen_overflows", "14. storm: ListenOverflows (dropped connections)", 0),
    row(Case::Storm, "rss_per_conn_kib", "14. storm: server memory per idle connection (KiB)", 1),
];

/// The rows of the streaming table.
pub const STREAM_ROWS: &[Row] = &[
    row(Case::StreamItems(16), "items_per_s", "8. server stream, 16 B items (items/s)", 0),
    row(Case::StreamItems(16), "mb_per_s", "8. server stream, 16 B items (MB/s)", 1),
    row(Case::StreamItems(65536), "items_per_s", "9. server stream, 64 KiB items (items/s)", 0),
    row(Case::StreamItems(65536), "mb_per_s", "9. server stream, 64 KiB items (MB/s)", 0),
    row(Case::StreamPingPong, "p50_us", "10. bidi ping-pong, 16 B, p50 (µs)", 1),
    row(Case::StreamPingPong, "p99_us", "10. bidi ping-pong, 16 B, p99 (µs)", 1),
    row(Case::StreamPingPong, "p999_us", "10. bidi ping-pong, 16 B, p99.9 (µs)", 1),
    row(Case::StreamPingPong, "round_trips_per_s", "10. bidi ping-pong, 16 B (round trips/s)", 0),
    row(Case::StreamCancel, "median_us", "11. stream cancel-to-drop median (µs)", 1),
    row(Case::StreamCancel, "p99_us", "11. stream cancel-to-drop p99 (µs)", 1),
    row(Case::StreamCancel, "max_us", "11. stream cancel-to-drop max (µs)", 1),
    row(Case::StreamStall, "items_sent", "12. consumer never reads, 64 KiB items: items the producer sent in 1 s", 0),
    row(Case::StreamStall, "mib_sent", "12. consumer never reads: MiB the producer sent", 1),
    row(Case::StreamStall, "rss_growth_mib", "12. consumer never reads: process RSS growth (MiB)", 1),
];

/// The rows of the two-process table.
pub const TWO_PROCESS_ROWS: &[Row] = &[
    row(Case::Seq, "p50_us", "1. sequential latency p50 (µs)", 1),
    row(Case::Seq, "p99_us", "1. sequential latency p99 (µs)", 1),
    row(Case::Seq, "p999_us", "1. sequential latency p99.9 (µs)", 1),
    row(Case::Seq, "calls_per_s", "1. sequential calls/s", 0),
    row(Case::Tput(64), "calls_per_s", "2. throughput, 64 in flight (calls/s)", 0),
    row(Case::Tput(256), "calls_per_s", "2. throughput, 256 in flight (calls/s)", 0),
    row(Case::Tput(1024), "calls_per_s", "2. throughput, 1,024 in flight (calls/s)", 0),
    row(Case::Tput(256), "cpu_us_per_call", "6. CPU time per call, both sides, 256 in flight (µs)", 2),
    row(Case::Tput(256), "server_cpu_us_per_call", "6. CPU time per call, server, 256 in flight (µs)", 2),
    row(Case::Tput(256), "syscalls_per_call", "6. system calls per call, both sides, 256 in flight", 2),
];

/// `value` with `decimals` decimals below 1,000, and as a whole number with thousands
/// separators from 1,000 up.
pub fn number(value: f64, decimals: usize) -> String {
    if value.abs() < 1000.0 {
        return format!("{value:.decimals$}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// `a / b`, or "n/a" if either is missing or `b` is below one unit of its last shown decimal.
fn ratio(a: Option<f64>, b: Option<f64>, decimals: usize) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.abs() >= 10f64.powi(-(decimals as i32)) => format!("{:.2}x", a / b),
        _ => "n/a".to_owned(),
    }
}

/// A markdown table of `rows`: for each implementation the median over runs with the minimum
/// and maximum in parentheses, then tidl's median as a multiple of tarpc's and of raw's.
pub fn render(table: &Table, rows: &[Row]) -> String {
    let mut out = String::from("| case | raw | tarpc | tidl | tidl/tarpc | tidl/raw |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = write!(out, "| {} ", row.label);
        for imp in Impl::ALL {
            let cell = match median_min_max(&table.values(row.case, imp, row.key)) {
                None => "n/a".to_owned(),
                Some((median, min, max)) if min == max => number(median, row.decimals),
                Some((median, min, max)) => format!(
                    "{} ({}–{})",
                    number(median, row.decimals),
                    number(min, row.decimals),
                    number(max, row.decimals)
                ),
            };
            let _ = write!(out, "| {cell} ");
        }
        let tidl = table.median(row.case, Impl::Tidl, row.key);
        let _ = writeln!(
            out,
            "| {} | {} |",
            ratio(tidl, table.median(row.case, Impl::Tarpc, row.key), row.decimals),
            ratio(tidl, table.median(row.case, Impl::Raw, row.key), row.decimals)
        );
    }
    out
}

/// The cell of `row` for `imp`: the median over runs with the minimum and maximum in
/// parentheses.
fn cell(table: &Table, row: &Row, imp: Impl) -> String {
    match median_min_max(&table.values(row.case, imp, row.key)) {
        None => "n/a".to_owned(),
        Some((median, min, max)) if min == max => number(median, row.decimals),
        Some((median, min, max)) => {
            format!("{} ({}–{})", number(median, row.decimals), number(min, row.decimals), number(max, row.decimals))
        }
    }
}

/// A markdown table of the streaming `rows`: tarpc (which has no streams), tonic with each
/// producer and tidl, then tidl's median as a multiple of each of tonic's.
pub fn render_streams(table: &Table, rows: &[Row]) -> String {
    let mut out =
        String::from("| case | tarpc | tonic-ready | tonic-chan | tidl | tidl/tonic-ready | tidl/tonic-chan |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = write!(out, "| {} | n/a (no streams) ", row.label);
        for imp in [Impl::TonicReady, Impl::TonicChan, Impl::Tidl] {
            let _ = write!(out, "| {} ", cell(table, row, imp));
        }
        let tidl = table.median(row.case, Impl::Tidl, row.key);
        let _ = writeln!(
            out,
            "| {} | {} |",
            ratio(tidl, table.median(row.case, Impl::TonicReady, row.key), row.decimals),
            ratio(tidl, table.median(row.case, Impl::TonicChan, row.key), row.decimals)
        );
    }
    out
}

/// One target's line: met, missed by how much, or not measured.
fn verdict(name: &str, value: Option<f64>, limit: Option<f64>, at_most: bool, detail: &str) -> String {
    let verdict = match (value, limit) {
        (Some(v), Some(l)) if (at_most && v <= l) || (!at_most && v >= l) => "**met**".to_owned(),
        (Some(v), Some(l)) if at_most => format!("**missed**, {:.0}% over the limit", (v / l - 1.0) * 100.0),
        (Some(v), Some(l)) => format!("**missed**, {:.0}% short of the target", (1.0 - v / l) * 100.0),
        _ => "not measured".to_owned(),
    };
    format!("- {name}: {verdict} ({detail})\n")
}

/// The targets of the issue "Close to the wire" (unary calls near the raw floor), checked
/// against the medians of one process (`one`) and of two (`two`), one line each. Its "no worse
/// than before" targets (sequential p50, cancel-to-drop) compare runs, and are not checked here.
pub fn wire_targets(one: &Table, two: &Table) -> String {
    let fmt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".to_owned(), |v| number(v, d));
    let (tidl, tarpc, raw) = (Impl::Tidl, Impl::Tarpc, Impl::Raw);
    let mut out = String::new();
    for (table, processes) in [(one, "one process"), (two, "two processes")] {
        let m = |case, imp, key| table.median(case, imp, key);
        for (n, label) in [(64, "64"), (256, "256"), (1024, "1,024")] {
            let calls = |imp| m(Case::Tput(n), imp, "calls_per_s");
            if calls(tidl).is_none() {
                continue;
            }
            let paired = |other| match median_min_max(&table.paired_ratios(Case::Tput(n), tidl, other, "calls_per_s")) {
                Some((median, min, max)) => format!("{median:.2}x ({min:.2}–{max:.2})"),
                None => "n/a".to_owned(),
            };
            let detail = format!(
                "tidl {}, raw {}, tarpc {} calls/s; tidl's round by round: {} raw's, {} tarpc's",
                fmt(calls(tidl), 0),
                fmt(calls(raw), 0),
                fmt(calls(tarpc), 0),
                paired(raw),
                paired(tarpc)
            );
            let what = format!("{processes}, {label} in flight");
            out.push_str(&verdict(
                &format!("{what}: throughput >= 0.8x raw's"),
                calls(tidl),
                calls(raw).map(|v| v * 0.8),
                false,
                &detail,
            ));
            out.push_str(&verdict(
                &format!("{what}: throughput >= 2.5x tarpc's"),
                calls(tidl),
                calls(tarpc).map(|v| v * 2.5),
                false,
                &detail,
            ));
        }
        let cpu = |imp| m(Case::Tput(256), imp, "cpu_us_per_call");
        out.push_str(&verdict(
            &format!("{processes}, 256 in flight: CPU time per call, both sides, <= 1.5x raw's"),
            cpu(tidl),
            cpu(raw).map(|v| v * 1.5),
            true,
            &format!("tidl {} µs, raw {} µs", fmt(cpu(tidl), 2), fmt(cpu(raw), 2)),
        ));
    }
    let m = |case, imp, key| one.median(case, imp, key);
    for size in [16, 1024, 64 * 1024, 1024 * 1024] {
        let calls = |imp| m(Case::Payload(size), imp, "calls_per_s");
        let label = match size {
            16 => "16 B".to_owned(),
            size if size < 1024 * 1024 => format!("{} KiB", size / 1024),
            size => format!("{} MiB", size / (1024 * 1024)),
        };
        let detail =
            format!("tidl {}, tarpc {}, raw {} calls/s", fmt(calls(tidl), 0), fmt(calls(tarpc), 0), fmt(calls(raw), 0));
        out.push_str(&verdict(&format!("payload {label}: >= 1.0x tarpc's"), calls(tidl), calls(tarpc), false, &detail));
        if size == 64 * 1024 {
            out.push_str(&verdict(
                &format!("payload {label}: >= 0.9x raw's"),
                calls(tidl),
                calls(raw).map(|v| v * 0.9),
                false,
                &detail,
            ));
        }
    }
    // Counted over whole runs, a few allocations of the runtime's own (a buffer growing once)
    // add thousandths to the per-call figure, which the table rounds to hundredths.
    for (side, key, limit) in [("client", "allocs_client", 1.0), ("server", "allocs_server", 2.0)] {
        let v = m(Case::Cost, tidl, key);
        out.push_str(&verdict(
            &format!("at most {limit} heap allocation(s) per echo call on the {side} (to the hundredth)"),
            v,
            Some(limit + 0.005),
            true,
            &format!("tidl {}", fmt(v, 2)),
        ));
    }
    out
}

/// The streaming targets checked against the one-process medians, one line each.
pub fn stream_targets(table: &Table) -> String {
    let m = |case, imp, key| table.median(case, imp, key);
    let fmt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".to_owned(), |v| number(v, d));
    let (tidl, ready, chan) = (Impl::Tidl, Impl::TonicReady, Impl::TonicChan);
    let mut out = String::new();
    let small = |imp| m(Case::StreamItems(16), imp, "items_per_s");
    let detail = format!(
        "tidl {} items/s, tonic {} with a channel, {} with a ready stream",
        fmt(small(tidl), 0),
        fmt(small(chan), 0),
        fmt(small(ready), 0)
    );
    out.push_str(&verdict(
        "16 B items: tidl >= 2x tonic's channel-fed items/s",
        small(tidl),
        small(chan).map(|v| v * 2.0),
        false,
        &detail,
    ));
    out.push_str(&verdict(
        "16 B items: tidl >= tonic's ready-stream items/s",
        small(tidl),
        small(ready),
        false,
        &detail,
    ));
    let large = |imp| m(Case::StreamItems(65536), imp, "mb_per_s");
    out.push_str(&verdict(
        "64 KiB items: tidl >= tonic's MB/s (the better of its two producers)",
        large(tidl),
        large(ready).zip(large(chan)).map(|(a, b)| a.max(b)),
        false,
        &format!(
            "tidl {} MB/s, tonic {} with a ready stream, {} with a channel",
            fmt(large(tidl), 0),
            fmt(large(ready), 0),
            fmt(large(chan), 0)
        ),
    ));
    // The default window is 1 MiB: 16 items of 64 KiB, plus the one whose send is under way.
    let sent = |imp| m(Case::StreamStall, imp, "items_sent");
    let growth = |imp| m(Case::StreamStall, imp, "rss_growth_mib");
    out.push_str(&verdict(
        "memory bounded by the window with a consumer that never reads: tidl's producer sends at \
         most 1 MiB / 64 KiB + 2 = 18 items",
        sent(tidl),
        Some(18.0),
        true,
        &format!(
            "items sent in 1 s: tidl {}, tonic {} with a ready stream, {} with a channel; RSS growth \
             {} / {} / {} MiB",
            fmt(sent(tidl), 0),
            fmt(sent(ready), 0),
            fmt(sent(chan), 0),
            fmt(growth(tidl), 1),
            fmt(growth(ready), 1),
            fmt(growth(chan), 1)
        ),
    ));
    out
}

/// The targets checked against the one-process medians, one line each.
pub fn targets(table: &Table) -> String {
    let m = |case, imp, key| table.median(case, imp, key);
    let (tidl, tarpc, raw) = (Impl::Tidl, Impl::Tarpc, Impl::Raw);
    let mut out = String::new();
    let mut check = |name: &str, value: Option<f64>, limit: Option<f64>, at_most: bool, detail: String| {
        let verdict = match (value, limit) {
            (Some(v), Some(l)) if (at_most && v <= l) || (!at_most && v >= l) => "**met**".to_owned(),
            (Some(v), Some(l)) if at_most => format!("**missed**, {:.0}% over the limit", (v / l - 1.0) * 100.0),
            (Some(v), Some(l)) => format!("**missed**, {:.0}% short of the target", (1.0 - v / l) * 100.0),
            _ => "not measured".to_owned(),
        };
        let _ = writeln!(out, "- {name}: {verdict} ({detail})");
    };
    let fmt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".to_owned(), |v| number(v, d));

    let p50 = |imp| m(Case::Seq, imp, "p50_us");
    check(
        "sequential p50 <= 0.5x tarpc's",
        p50(tidl),
        p50(tarpc).map(|v| v * 0.5),
        true,
        format!("tidl {} µs, tarpc {} µs", fmt(p50(tidl), 1), fmt(p50(tarpc), 1)),
    );
    check(
        "sequential p50 <= 1.5x raw's",
        p50(tidl),
        p50(raw).map(|v| v * 1.5),
        true,
        format!("tidl {} µs, raw {} µs", fmt(p50(tidl), 1), fmt(p50(raw), 1)),
    );
    let t256 = |imp| m(Case::Tput(256), imp, "calls_per_s");
    let t1024 = m(Case::Tput(1024), tidl, "calls_per_s");
    check(
        "throughput at 256 in flight >= 2x tarpc's",
        t256(tidl),
        t256(tarpc).map(|v| v * 2.0),
        false,
        format!("tidl {} calls/s, tarpc {} calls/s", fmt(t256(tidl), 0), fmt(t256(tarpc), 0)),
    );
    check(
        "throughput at 1,024 in flight not below the 256 figure",
        t1024,
        t256(tidl),
        false,
        format!("tidl {} calls/s at 1,024, {} at 256", fmt(t1024, 0), fmt(t256(tidl), 0)),
    );
    let cancel = |imp, key| m(Case::Cancel, imp, key);
    check(
        "cancel-to-drop median <= 0.5x tarpc's",
        cancel(tidl, "median_us"),
        cancel(tarpc, "median_us").map(|v| v * 0.5),
        true,
        format!("tidl {} µs, tarpc {} µs", fmt(cancel(tidl, "median_us"), 1), fmt(cancel(tarpc, "median_us"), 1)),
    );
    check(
        "cancel-to-drop p99 under 200 µs",
        cancel(tidl, "p99_us"),
        Some(200.0),
        true,
        format!("tidl {} µs", fmt(cancel(tidl, "p99_us"), 1)),
    );
    for (side, key) in [("client", "allocs_client"), ("server", "allocs_server")] {
        let v = m(Case::Cost, tidl, key);
        check(
            &format!("at most 4 heap allocations per echo call on the {side}"),
            v,
            Some(4.0),
            true,
            format!("tidl {}", fmt(v, 2)),
        );
    }
    // Linear cost: 16 times the payload (64 KiB to 1 MiB) at most 16 times the time per call, and
    // 4 times the calls in flight (256 to 1,024) at most 4 times the memory.
    let per_call = |size| m(Case::Payload(size), tidl, "calls_per_s").map(|c| 1e6 / c);
    let (small, large) = (per_call(64 * 1024), per_call(1024 * 1024));
    check(
        "cost grows linearly: 16x the payload (64 KiB to 1 MiB) at most 16x the time per call",
        large.zip(small).map(|(l, s)| l / s),
        Some(16.0),
        true,
        format!("tidl {} µs at 64 KiB, {} µs at 1 MiB", fmt(small, 1), fmt(large, 1)),
    );
    let rss = |n| m(Case::Tput(n), tidl, "rss_mib");
    check(
        "cost grows linearly: 4x the calls in flight (256 to 1,024) at most 4x the peak memory",
        rss(1024).zip(rss(256)).map(|(a, b)| a / b),
        Some(4.0),
        true,
        format!("tidl {} MiB at 256, {} MiB at 1,024", fmt(rss(256), 1), fmt(rss(1024), 1)),
    );
    let busy = |imp| m(Case::Busy, imp, "max_ms");
    check(
        "a handler computing without awaiting delays another connection's call no more than tarpc's \
         (max over trials, with 5 ms of slack for noise)",
        busy(tidl),
        busy(tarpc).map(|v| v + 5.0),
        true,
        format!("tidl {} ms, tarpc {} ms", fmt(busy(tidl), 1), fmt(busy(tarpc), 1)),
    );
    let wire = |imp| m(Case::Cost, imp, "wire_bytes");
    check(
        "bytes on the wire per call within 20% of tarpc's or smaller",
        wire(tidl),
        wire(tarpc).map(|v| v * 1.2),
        true,
        format!("tidl {} B, tarpc {} B", fmt(wire(tidl), 1), fmt(wire(tarpc), 1)),
    );
    out
}
