//! The store's footprint: its size on disk at the end of every simulated
//! day, and whether it stops growing once a retention window is reached.
//! A daemon left alone for months must not fill its disk; with old rows
//! pruned, SQLite reuses their pages, so after the window the file should
//! plateau — all but the ledger (orders, their history, cases, audit),
//! which retention keeps for good, pseudonymised, and which therefore grows
//! with every order, within a budget per order. The write-ahead log is
//! measured apart: it swings with checkpoints, and is bounded by them.

use std::path::Path;

/// The SQLite file, in MiB (0 when missing). It never shrinks (pages freed
/// by pruning are reused, not returned), so it is the disk the store needs.
pub fn store_mib(db: &Path) -> f64 {
    file_mib(db)
}

/// The store's write-ahead log, in MiB (0 when missing).
pub fn wal_mib(db: &Path) -> f64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    file_mib(Path::new(&wal))
}

fn file_mib(p: &Path) -> f64 {
    std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1_048_576.0
}

/// Largest the WAL may be seen at a day's end: SQLite checkpoints it at
/// 1000 pages (4 MiB) and the store cuts it back to 1 MiB after a
/// checkpoint; one transaction's pages may come on top.
pub const WAL_BOUND_MIB: f64 = 8.0;

/// Growth tolerated after the window: SQLite's free pages are not reused
/// perfectly, and busy days leave more rows inside the window.
const TOLERANCE_SHARE: f64 = 0.10;
const TOLERANCE_MIB: f64 = 1.0;

/// What the ledger may take per order or conversation, KiB (about 1.2 KiB
/// in the 90-day run: an order row, ~7 state changes with their notes, its
/// Tribute notification; a conversation's pseudonymised row, its cases and
/// audit; the indexes).
pub const LEDGER_KIB_PER_RECORD: f64 = 3.0;
/// On top of it: every table and index of the ledger takes a page or more
/// even when nearly empty (about 30 of them, 4 KiB pages).
pub const LEDGER_FIXED_KIB: f64 = 256.0;

/// The store without its ledger, day by day (the days both were measured).
pub fn without_ledger(store_mib: &[f64], ledger_mib: &[f64]) -> Vec<f64> {
    store_mib.iter().zip(ledger_mib).map(|(s, l)| (s - l).max(0.0)).collect()
}

/// `mib_by_day[d]` is the size at the end of day `d + 1`. With a window of
/// `window_days`, rows older than that are pruned from the end of day
/// `window_days` on; one more day lets the pruning and page reuse settle.
/// From then on the store may grow by at most 10 % + 1 MiB over that
/// day's size. `Ok(None)`: the run was too short to tell; `Err`: what grew.
pub fn plateau_after_window(mib_by_day: &[f64], window_days: u32) -> Result<Option<f64>, String> {
    let settled = window_days as usize;
    let Some(&base) = mib_by_day.get(settled) else { return Ok(None) };
    let Some((day, &peak)) = mib_by_day.iter().enumerate().skip(settled + 1).max_by(|a, b| a.1.total_cmp(b.1)) else {
        return Ok(None);
    };
    let growth = peak - base;
    if growth > base * TOLERANCE_SHARE + TOLERANCE_MIB {
        return Err(format!(
            "with a {window_days}-day retention window the store still grew: {base:.1} MiB at the end of day {} \
             and {peak:.1} MiB at the end of day {} (tolerated: +10 % + 1 MiB)",
            settled + 1,
            day + 1
        ));
    }
    Ok(Some(growth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_file_and_its_wal_apart() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert_eq!((store_mib(&db), wal_mib(&db)), (0.0, 0.0));
        std::fs::write(&db, vec![0u8; 1_048_576]).unwrap();
        std::fs::write(dir.path().join("x.db-wal"), vec![0u8; 524_288]).unwrap();
        assert_eq!((store_mib(&db), wal_mib(&db)), (1.0, 0.5));
    }

    #[test]
    fn the_ledger_is_taken_out_day_by_day() {
        assert_eq!(without_ledger(&[5.0, 6.0, 7.0], &[1.0, 2.0]), vec![4.0, 4.0]);
        assert_eq!(without_ledger(&[1.0], &[1.5]), vec![0.0]);
    }

    #[test]
    fn a_plateau_holds_and_linear_growth_does_not() {
        let flat: Vec<f64> = (1..=60).map(|d| if d <= 30 { d as f64 } else { 30.0 + (d % 3) as f64 }).collect();
        assert!(matches!(plateau_after_window(&flat, 30), Ok(Some(g)) if g <= 3.0));
        let linear: Vec<f64> = (1..=60).map(|d| d as f64).collect();
        let err = plateau_after_window(&linear, 30).unwrap_err();
        assert!(
            err.contains("31.0 MiB at the end of day 31") && err.contains("60.0 MiB at the end of day 60"),
            "{err}"
        );
        assert_eq!(plateau_after_window(&linear[..31], 30), Ok(None), "too short to tell");
        assert_eq!(plateau_after_window(&[], 7), Ok(None));
    }
}
