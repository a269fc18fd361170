//! Guardrail cost with the default profile: a 4 KB prompt and a 4 KB response streamed in
//! 40 chunks. Run: `cargo run --release -p portcullis-guard --example guard_bench`.

use std::hint::black_box;
use std::time::Instant;

use portcullis_guard::{CompiledProfile, Direction, StreamScanner, DEFAULT_HOLD_BACK};

const PROSE: &str = "Our quarterly review covers the migration of the billing service to the \
new cluster, the latency regression seen on 2024-05-14 and the follow-up work items. ";
const CODE: &str = "fn handler(req: Request) -> Result<Response, Error> {\n    let id = \
req.header(\"x-request-id\").unwrap_or(\"550e8400-e29b-41d4-a716-446655440000\");\n    \
log::info!(\"commit 9fceb02d0ae598e95dc970b74767f19372d61af8 v1.2.3 took {} ms\", 42);\n}\n";

fn build(target: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < target {
        s.push_str(if i % 3 == 2 { CODE } else { PROSE });
        if i == 5 {
            s.push_str("Please reply to maria.gonzalez@example.com with the refund. ");
        }
        if i == 11 {
            s.push_str("The customer paid with 4111 1111 1111 1111 last week. ");
        }
        i += 1;
    }
    s.truncate(target);
    s
}

fn median_ns(iters: usize, mut f: impl FnMut()) -> (u128, u128) {
    for _ in 0..iters / 10 {
        f();
    }
    let mut samples: Vec<u128> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    (samples[iters / 2], samples[iters * 99 / 100])
}

fn main() {
    let profile = CompiledProfile::default_profile();
    let text = build(4096);
    let check = profile.scan_text(&text, Direction::Input);
    assert_eq!(check.findings.len(), 2, "{:?}", check.findings);
    let chunks: Vec<&str> = {
        let mut v = Vec::new();
        let mut start = 0;
        for i in 1..=40 {
            let mut end = (text.len() * i / 40).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            v.push(&text[start..end]);
            start = end;
        }
        v
    };
    let iters = 5000;
    let (p50, p99) = median_ns(iters, || {
        black_box(profile.scan_text(black_box(&text), Direction::Input));
    });
    println!(
        "prompt 4 KB scan_text (input):       median {:>7} ns  p99 {:>7} ns",
        p50, p99
    );
    let (p50, p99) = median_ns(iters, || {
        let mut s = StreamScanner::new(&profile, Direction::Output, DEFAULT_HOLD_BACK);
        let mut n = 0;
        for c in &chunks {
            n += s.push(black_box(c)).emit.len();
        }
        n += s.finish().emit.len();
        black_box(n);
    });
    println!(
        "stream 4 KB / 40 chunks (output):    median {:>7} ns  p99 {:>7} ns",
        p50, p99
    );
    let (p50, _) = median_ns(200, || {
        black_box(CompiledProfile::default_profile());
    });
    println!("compile default profile:             median {:>7} ns", p50);
}
