//! `lbd --check`: exit 0 and a summary for the example host file, exit 64 naming file:line for
//! every validation rule.

const BIN: &str = env!("CARGO_BIN_EXE_lbd");

#[test]
fn example_host_file_passes_check() {
    hostfile::checkcases::assert_example_passes(BIN);
}

#[test]
fn every_rule_exits_64_with_its_line_and_a_missing_file_66() {
    hostfile::checkcases::assert_every_case_rejected(BIN);
}
