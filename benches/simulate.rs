//! Simulation throughput and memory: the whole system (daemon, simulated
//! Telegram with normal faults, reference backend, SQLite) on a paused
//! clock, at two sizes with the same density of orders per simulated day.
//! Prints simulated orders per real second and the peak RSS (VmHWM) after
//! each run: flat figures between the sizes show the driver and the daemon
//! scale linearly.
//!
//!     cargo bench --bench simulate                       # 1,000 then 10,000 orders
//!     SIM_BENCH_SIZES=300,3000 cargo bench --bench simulate

use tribute_testbed::simulate::{peak_rss_kib, run_blocking, Faults, Params};

fn main() {
    let sizes: Vec<usize> = std::env::var("SIM_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    // One simulated day per 1,000 orders: the same load per day at every size.
    for orders in sizes {
        let days = (orders / 1_000).max(1) as u32;
        let p = Params { orders, customers: orders / 2, days, faults: Faults::Normal, ..Params::new(42) };
        let r = run_blocking(&p, None).expect("simulation runs");
        println!(
            "simulate {orders:>6} orders / {days:>2} day(s), faults normal: {:>7.1} orders per real second \
             ({:.1} s real for {} s simulated, {} steps); violations {}; peak RSS {} MiB, \
             of which ~{:.1} MiB the simulated Telegram's history",
            r.orders_per_real_sec,
            r.real_secs,
            r.sim_secs,
            r.steps,
            r.violations.len(),
            peak_rss_kib() / 1024,
            r.telegram_history_mib
        );
    }
}
