//! vpc (VHD) against qemu-img: for every size and option combination,
//! instar's image equals qemu-img's byte for byte outside the masked
//! footer fields (timestamp, checksum, UUID), takes the same space on
//! disk, qemu-img's `info` says the same of both, instar's `info` prints
//! what qemu-img prints on either, plain `check` answers as qemu-img does
//! (no check for vpc), instar's own `check --deep` finds both clean, and
//! qemu-img can write into instar's image and read the data back, after
//! which `check --deep` still finds it clean. Refused creates get
//! qemu-img's words and leave no file (qemu-img leaves an empty one).

use super::{write_pattern, Pair, CLEAN};
use crate::util::Transcript;
use crate::util::{create_args, instar, Sandbox};
use instar_matrix::Target;
use rstest::rstest;
use std::path::Path;

/// `instar check --deep` finds `name` in `dir` clean, human and JSON, with
/// `-f vpc` and (a dynamic disk, which probes as vpc) without.
pub fn assert_deep_clean(t: &Transcript, dir: &Path, name: &str, dynamic: bool) {
    let mut runs = vec![t.run(instar(), &["check", "--deep", "-f", "vpc", name], dir)];
    if dynamic {
        runs.push(t.run(instar(), &["check", "--deep", name], dir));
    }
    for r in &runs {
        t.assert_same("check --deep stdout", CLEAN, &r.stdout);
        t.assert_same("check --deep stderr", "", &r.stderr);
        t.check(r.ok(), || format!("check --deep exited {:?}", r.code));
    }
    let json = t.run(instar(), &["check", "--deep", "--output=json", "-f", "vpc", name], dir);
    let want = format!(
        "{{\n    \"check-errors\": 0,\n    \"filename\": \"{name}\",\n    \"format\": \"vpc\"\n}}\n"
    );
    t.assert_same("check --deep --output=json stdout", &want, &json.stdout);
    t.check(json.ok(), || format!("check --deep --output=json exited {:?}", json.code));
}

/// One create case and every comparison.
fn parity(options: &str, size: &str) {
    let Some(pair) = Pair::new(Target::Vhd) else { return };
    if !pair.create(&[], options, size) {
        return;
    }
    pair.same_bytes();
    pair.same_blocks();
    pair.same_qemu_info();
    let dynamic = !options.contains("subformat=fixed");
    for dir in [pair.theirs(), pair.mine()] {
        pair.info_parity(&dir);
        let code = pair.check_parity(&dir);
        pair.s.t.check(code == Some(63), || format!("qemu-img check exited {code:?}, not 63"));
        assert_deep_clean(&pair.s.t, &dir, &pair.image, dynamic);
    }
    let size = pair.virtual_size(&pair.mine());
    if size > 0 {
        let data = pair.s.file("data.raw");
        write_pattern(&data, size);
        pair.qemu_writes_and_reads_back(&data, &["--target-is-zero"]);
        assert_deep_clean(&pair.s.t, &pair.mine(), &pair.image, dynamic);
    }
}

#[rstest]
// The five vhd rows of CREATE_CASES (docs/compat.md §4.1).
#[case::row_1m_default("", "1M")]
#[case::row_64m_default("", "64M")]
#[case::row_1g_default("", "1G")]
#[case::row_1m_fixed("subformat=fixed", "1M")]
#[case::row_16m_fixed("subformat=fixed", "16M")]
#[case::dynamic_16m("", "16M")]
#[case::dynamic_1000m("", "1000M")]
#[case::dynamic_100g("", "100G")]
#[case::fixed_64m("subformat=fixed", "64M")]
#[case::fixed_1000m("subformat=fixed", "1000M")]
#[case::fixed_1g("subformat=fixed", "1G")]
#[case::fixed_100g("subformat=fixed", "100G")]
#[case::dynamic_force_1m("force_size=on", "1M")]
#[case::dynamic_force_16m("force_size=on", "16M")]
#[case::dynamic_force_64m("force_size=on", "64M")]
#[case::dynamic_force_1000m("force_size=on", "1000M")]
#[case::dynamic_force_1g("force_size=on", "1G")]
#[case::dynamic_force_100g("force_size=on", "100G")]
#[case::fixed_force_1m("subformat=fixed,force_size=on", "1M")]
#[case::fixed_force_16m("subformat=fixed,force_size=on", "16M")]
#[case::fixed_force_64m("subformat=fixed,force_size=on", "64M")]
#[case::fixed_force_1000m("subformat=fixed,force_size=on", "1000M")]
#[case::fixed_force_1g("subformat=fixed,force_size=on", "1G")]
#[case::fixed_force_100g("subformat=fixed,force_size=on", "100G")]
// Sizes that are not multiples of 512 round up, then to a geometry.
#[case::odd_1000_bytes("", "1000")]
#[case::odd_34000_bytes("", "34000")]
#[case::odd_34000_bytes_forced("force_size=on", "34000")]
#[case::odd_fixed_3000_bytes("subformat=fixed", "3000")]
#[case::empty_disk("", "0")]
// Past the largest geometry the size is kept as given.
#[case::beyond_geometry_200g("", "200G")]
#[case::largest_2040g("", "2040G")]
#[case::explicit_dynamic("subformat=dynamic,force_size=off", "64M")]
#[case::preallocation_ignored("subformat=fixed,preallocation=full", "1M")]
fn create(#[case] options: &str, #[case] size: &str) {
    parity(options, size);
}

/// Refused creates: qemu-img's message, and no file left by instar
/// (qemu-img leaves an empty file behind; instar does better).
#[rstest]
#[case::too_large("", "2041G")]
#[case::too_large_forced("force_size=on", "3T")]
#[case::too_large_fixed("subformat=fixed", "4T")]
#[case::subformat_foo("subformat=foo", "1M")]
#[case::subformat_capitalised("subformat=Fixed", "1M")]
#[case::subformat_empty("subformat=", "1M")]
fn refusals(#[case] options: &str, #[case] size: &str) {
    if let Some(pair) = Pair::new(Target::Vhd) {
        pair.assert_refused(&[], options, size);
    }
}

/// A fixed disk has no footer at offset 0: without `-f` it probes as raw,
/// and a dynamic disk as vpc, in instar as in qemu-img.
#[rstest]
#[case::fixed_is_raw("subformat=fixed", "raw")]
#[case::dynamic_is_vpc("", "vpc")]
fn probe(#[case] options: &str, #[case] format: &str) {
    let Some(s) = Sandbox::new() else { return };
    s.instar_ok(&create_args(&["-q"], "vpc", options, "img.vhd", "1M"));
    s.same(&["info", "--output=json", "img.vhd"]);
    let r = s.instar(&["info", "--output=json", "img.vhd"]);
    let probed = serde_json::from_str::<serde_json::Value>(&r.stdout).map(|v| v["format"].clone());
    s.t.check(probed.as_ref().ok().and_then(|f| f.as_str()) == Some(format), || {
        format!("instar probes {probed:?}, not {format}")
    });
}
