//! `sqlx::migrate!` embeds `migrations/` in the library at compile time;
//! without this, Cargo does not see a new or changed migration and an
//! incremental build keeps the old set.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
