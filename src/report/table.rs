//! Human tables.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// A table with our house style; plain ASCII when not on a terminal.
pub fn new(headers: &[&str], tty: bool) -> Table {
    let mut t = Table::new();
    if tty {
        t.load_preset(UTF8_FULL_CONDENSED);
    } else {
        t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        t.force_no_tty();
    }
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(headers.to_vec());
    t
}
