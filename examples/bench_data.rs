//! Writes a benchmark database: `bench_data PATH STORIES RUNS ORPHANED_STORIES [active]`.
//! Used by `scripts/bench.sh`.

#[path = "../benches/data/mod.rs"]
mod data;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0);
    let Some(path) = args.first() else {
        eprintln!("usage: bench_data PATH STORIES RUNS ORPHANED_STORIES [active]");
        std::process::exit(2);
    };
    let shape = data::Shape {
        stories: number(1).max(1),
        runs: number(2),
        orphaned_stories: number(3),
        active: args.get(4).is_some_and(|a| a == "active"),
    };
    if let Err(e) = data::generate(std::path::Path::new(path), shape) {
        eprintln!("bench_data: {e}");
        std::process::exit(1);
    }
}
