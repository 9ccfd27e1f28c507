//! `sqlx::migrate!` embeds `migrations/` at compile time; without this,
//! Cargo would not rebuild the crate when a migration is added or edited,
//! and a binary could be built without its newest migration.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
