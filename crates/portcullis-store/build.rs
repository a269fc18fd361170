//! `sqlx::migrate!` embeds the migration files at compile time; tell cargo to
//! rebuild this crate whenever a migration is added or edited.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
