//! The load generator of `scripts/bench.sh`: authenticated GETs against one listener, each
//! request sent to a target (a Host and a bearer token) picked at random from a file.
//!
//! Two modes. Closed loop (`--rate 0`, the default): `--connections` workers, each sending its
//! next request as soon as the previous answer is read; this measures throughput. Open loop
//! (`--rate R`): one request every 1/R seconds whatever the server does, latency counted from
//! the moment each request was due, so a stalled server cannot hide behind a slow client.
//! Prints one line of `key=value` pairs on stdout.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::header::{HeaderValue, AUTHORIZATION, HOST};

/// Authenticated GETs at full speed or at a fixed rate; prints one `key=value` line.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the listener, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// Path and query of every request.
    #[arg(long, default_value = "/v1/projects?limit=20")]
    path: String,
    /// Targets: one `<host>\t<bearer token>` per line.
    #[arg(long)]
    targets: PathBuf,
    /// Concurrent connections in the closed loop.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per second in the open loop; 0 runs the closed loop.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Measured time, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time before it, same load.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// First send one request to every target (opens every tenant's pool), failing on any error.
    #[arg(long)]
    warm_all: bool,
    /// Label printed first on the result line.
    #[arg(long, default_value = "run")]
    label: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// One tenant to send requests to, headers prepared once.
struct Target {
    host: HeaderValue,
    authorization: HeaderValue,
}

fn read_targets(path: &PathBuf) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)?;
    let mut targets = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (host, token) = line
            .split_once('\t')
            .ok_or_else(|| anyhow::anyhow!("{}: expected <host>\\t<token>", path.display()))?;
        targets.push(Target {
            host: HeaderValue::from_str(host)?,
            authorization: HeaderValue::from_str(&format!("Bearer {}", token.trim()))?,
        });
    }
    anyhow::ensure!(!targets.is_empty(), "{} has no targets", path.display());
    Ok(targets)
}

/// What the measured window saw.
#[derive(Default)]
struct Tally {
    /// Latency of every answered request, in microseconds.
    latencies_us: Vec<u32>,
    by_status: BTreeMap<u16, u64>,
    errors: u64,
    /// Requests answered or failed, the unmeasured warm-up included.
    all: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.by_status {
            *self.by_status.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        self.all += other.all;
    }

    fn record(&mut self, outcome: Result<u16, reqwest::Error>, latency: Duration) {
        match outcome {
            Ok(status) => {
                *self.by_status.entry(status).or_default() += 1;
                self.latencies_us
                    .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(_) => self.errors += 1,
        }
    }
}

struct Shared {
    client: reqwest::Client,
    url: String,
    targets: Vec<Target>,
}

impl Shared {
    /// Sends one request and reads the whole body; returns the status.
    async fn send(&self, target: &Target) -> Result<u16, reqwest::Error> {
        let response = self
            .client
            .get(&self.url)
            .header(HOST, target.host.clone())
            .header(AUTHORIZATION, target.authorization.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        response.bytes().await?;
        Ok(status)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shared = Arc::new(Shared {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.connections.max(64))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?,
        url: format!("{}{}", args.url.trim_end_matches('/'), args.path),
        targets: read_targets(&args.targets)?,
    });
    if args.warm_all {
        warm_all(&shared, args.connections).await?;
    }
    let started = Instant::now();
    let measured_from = started + args.warmup;
    let end = measured_from + args.duration;
    let tally = if args.rate > 0.0 {
        open_loop(&shared, args.rate, measured_from, end).await
    } else {
        closed_loop(&shared, args.connections, measured_from, end).await
    };
    print_result(&args, &tally);
    Ok(())
}

/// One request to every target, `connections` at a time; any non-2xx answer is an error.
async fn warm_all(shared: &Arc<Shared>, connections: usize) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (shared, next) = (shared.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(target) = shared.targets.get(i) else {
                    return anyhow::Ok(());
                };
                let status = shared.send(target).await?;
                anyhow::ensure!(
                    (200..300).contains(&status),
                    "warming {:?} answered {status}",
                    target.host
                );
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

async fn closed_loop(
    shared: &Arc<Shared>,
    connections: usize,
    measured_from: Instant,
    end: Instant,
) -> Tally {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let shared = shared.clone();
        workers.spawn(async move {
            let mut rng = StdRng::from_entropy();
            let mut tally = Tally::default();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    return tally;
                }
                let target = &shared.targets[rng.gen_range(0..shared.targets.len())];
                let outcome = shared.send(target).await;
                let done = Instant::now();
                tally.all += 1;
                if sent >= measured_from && done <= end {
                    tally.record(outcome, done - sent);
                }
            }
        });
    }
    let mut total = Tally::default();
    while let Some(Ok(tally)) = workers.join_next().await {
        total.merge(tally);
    }
    total
}

/// The schedule runs on its own thread: `std::thread::sleep` wakes within tens of microseconds,
/// where the runtime's timer wheel rounds up to whole milliseconds, which would be counted as
/// the server's latency.
async fn open_loop(shared: &Arc<Shared>, rate: f64, measured_from: Instant, end: Instant) -> Tally {
    let every = Duration::from_secs_f64(1.0 / rate);
    let total = Arc::new(Mutex::new(Tally::default()));
    let runtime = tokio::runtime::Handle::current();
    let (shared, sink) = (shared.clone(), total.clone());
    let scheduler = std::thread::spawn(move || {
        let mut rng = StdRng::from_entropy();
        let mut requests = Vec::new();
        let mut due = Instant::now();
        while due < end {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let (shared, total) = (shared.clone(), sink.clone());
            let i = rng.gen_range(0..shared.targets.len());
            requests.push(runtime.spawn(async move {
                let outcome = shared.send(&shared.targets[i]).await;
                let latency = due.elapsed();
                let mut total = total.lock().unwrap();
                total.all += 1;
                if due >= measured_from {
                    // Counted from when the request was due, not from when it left.
                    total.record(outcome, latency);
                }
            }));
            due += every;
        }
        requests
    });
    let requests = tokio::task::spawn_blocking(move || scheduler.join())
        .await
        .expect("the scheduler thread is joined")
        .expect("the scheduler thread does not panic");
    for request in requests {
        let _ = request.await;
    }
    Arc::try_unwrap(total)
        .ok()
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_default()
}

fn print_result(args: &Args, tally: &Tally) {
    let mut latencies = tally.latencies_us.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        f64::from(latencies[rank.clamp(1, latencies.len()) - 1]) / 1000.0
    };
    let answered: u64 = tally.by_status.values().sum();
    let ok: u64 = tally
        .by_status
        .iter()
        .filter(|(status, _)| (200..300).contains(*status))
        .map(|(_, n)| n)
        .sum();
    let seconds = args.duration.as_secs_f64();
    // This process's own CPU time (Linux), so the caller can tell its load from other processes'.
    let cpu_ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let statuses: Vec<String> = tally
        .by_status
        .iter()
        .map(|(status, n)| format!("{status}:{n}"))
        .collect();
    println!(
        "label={} requests={answered} seconds={seconds:.1} rps={:.0} ok={ok} not_ok={} errors={} \
         p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} statuses={} all_requests={} cpu_ticks={cpu_ticks}",
        args.label,
        answered as f64 / seconds,
        answered - ok,
        tally.errors,
        percentile(50.0),
        percentile(90.0),
        percentile(99.0),
        percentile(100.0),
        if statuses.is_empty() {
            "none".to_owned()
        } else {
            statuses.join(",")
        },
        tally.all,
    );
}
