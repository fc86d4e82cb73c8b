//! What `#[observe]` expands to reaches nothing here: with no aspect the
//! attribute hands the function back.
