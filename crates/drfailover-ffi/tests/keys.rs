//! The C header's key list for `dr_config_set` is the library's key table, and every key is
//! accepted through the C path (`dr_config_set` goes to the same table as the DSN).

use drfailover_conn::keys::KEYS;

#[test]
fn header_lists_every_key_of_the_table_and_no_other() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../include/drfailover.h");
    let header = std::fs::read_to_string(path).expect("include/drfailover.h");
    let decl = header
        .find("dr_status dr_config_set(")
        .expect("dr_config_set in the header");
    let start = header[..decl]
        .rfind("// Keys (generated from the library's key table")
        .expect("the key list above dr_config_set");
    let list: String = header[start..decl]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "//")
        .map(|l| l.trim_start_matches("//"))
        .collect();
    let listed: Vec<&str> = list
        .split(',')
        .map(|k| k.trim().trim_end_matches('.').trim_matches('`'))
        .filter(|k| !k.is_empty())
        .collect();
    let table: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    assert_eq!(
        listed, table,
        "the header's key list differs from crates/drfailover-conn/src/keys.rs: edit the doc \
         comment of dr_config_set and run scripts/regen-header"
    );
}
